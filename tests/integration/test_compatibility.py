"""The README's compatibility table stays true: it lists every method of
the CRI services (from the API definition crid is built from), and each
method answers as the table says: `Unimplemented` ones with
UNIMPLEMENTED, every other one with anything else (an empty request is
refused or answered, never unimplemented)."""

import re

import grpc

import cridtest

ROW_RE = re.compile(r"^\| `(?P<rpc>[A-Za-z]+)` \| (?P<crid>[^|]+?) \|", re.M)


def readme_table():
    text = (cridtest.REPO / "README.md").read_text()
    section = text.split("## Compatibility", 1)[1].split("\n## ", 1)[0]
    return {m.group("rpc"): m.group("crid").strip() for m in ROW_RE.finditer(section)}


def api_methods(pb):
    methods = {}
    for service in ("RuntimeService", "ImageService"):
        for method in pb.DESCRIPTOR.services_by_name[service].methods:
            methods[method.name] = (service, method)
    return methods


def test_the_table_lists_every_method_of_the_api(api):
    table = readme_table()
    methods = api_methods(api.pb)
    assert sorted(table) == sorted(methods), (
        f"missing from README: {sorted(set(methods) - set(table))}; "
        f"not in the API: {sorted(set(table) - set(methods))}"
    )
    assert set(table.values()) <= {"yes", "Unimplemented"}, set(table.values())


def answer_code(crid, api, service, method):
    request_type = getattr(api.pb, method.input_type.name)
    response_type = getattr(api.pb, method.output_type.name)
    path = f"/runtime.v1.{service}/{method.name}"
    if method.server_streaming:
        call = crid.channel.unary_stream(
            path,
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        try:
            for _ in call(request_type(), timeout=5):
                break
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()
    call = crid.channel.unary_unary(
        path,
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )
    try:
        call(request_type(), timeout=5)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def test_each_method_answers_as_the_table_says(crid, api):
    table = readme_table()
    for name, (service, method) in sorted(api_methods(api.pb).items()):
        code = answer_code(crid, api, service, method)
        if table[name] == "Unimplemented":
            assert code == grpc.StatusCode.UNIMPLEMENTED, f"{name}: {code}"
        else:
            assert code != grpc.StatusCode.UNIMPLEMENTED, f"{name} is unimplemented"
