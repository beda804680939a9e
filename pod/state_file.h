/* pod/state_file: what keeps a sandbox or a container across restarts of
 * crid, in its own folder: request.pb, the request bytes as received
 * (written once: a request never changes), and state.json, what crid made
 * of it (written again on every change), both written atomically; and
 * the field helpers that write and read state.json. */
#ifndef CRID_POD_STATE_FILE_H
#define CRID_POD_STATE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct json_value;
struct json_writer;

/* Creates dir, writes <dir>/request.pb unless it is already there and
 * <dir>/state.json.  durable: fsynced (the record must survive a power
 * loss); otherwise only atomic, which is enough for what survives crid but
 * not a reboot (intent records of namespaces, mounts, monitors). */
int state_file_save(const char *dir, const uint8_t *request, size_t request_len, const char *state,
                    size_t state_len, bool durable, struct error *err);

/* <dir>/request.pb into a new buffer of *len bytes, the caller's. */
int state_file_read_request(const char *dir, uint8_t **bytes, size_t *len, struct error *err);

/* <dir>/state.json, parsed; NULL on error. */
struct json_value *state_file_read_state(const char *dir, struct error *err);

/* One field of state.json's object; a NULL string is written as null. */
void state_write_string(struct json_writer *writer, const char *key, const char *value);
void state_write_int(struct json_writer *writer, const char *key, int64_t value);
void state_write_bool(struct json_writer *writer, const char *key, bool value);

/* One field back: a copy of the string (NULL when missing or null), the
 * integer (0 when missing), the boolean (false when missing).  Missing is
 * what an older state.json has, so it is not an error. */
char *state_read_string(const struct json_value *state, const char *key);
int64_t state_read_int(const struct json_value *state, const char *key);
bool state_read_bool(const struct json_value *state, const char *key);

#endif
