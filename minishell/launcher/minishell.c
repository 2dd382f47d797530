/*
 * The `minishell` command: the -pipe and -e clients of a running instance, in
 * C, and an exec of the Python front end (minishell-py, installed beside this
 * program) for every other command line.
 *
 * Why C: scripts start `minishell -pipe` and `minishell -e` per use, and their
 * start-up and memory are measured targets (README: 12 ms, 4 MB). A CPython
 * interpreter alone takes 10-20 ms to start and 8 MB of RSS here; this program,
 * connection and reply included, takes about 2 ms and 1.2 MB (bench_socket.py).
 *
 * It is minishell/client.py again, byte for byte in what a user sees:
 * tests/test_client.py runs every client case against both. The protocol is
 * minishell/protocol/control.py's (its docstring defines the replies read
 * here), and so are the constants PROTOCOL_*, which the build writes into
 * minishell_protocol.h. To stay small it serves only command lines that it
 * understands entirely: -pipe or -e, with -base and -namespace, in printable
 * ASCII. Anything else (-attach, other flags, words outside printable ASCII,
 * -h) goes to the Python front end unchanged.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "minishell_protocol.h"

#define PYTHON_FRONT_END "minishell-py"
/* Never more than PROTOCOL_LINE_MAX: a line inside one read is then shorter. */
#define CHUNK (1 << 20)

#define RAW_ACK_LEN (sizeof PROTOCOL_RAW_ACK - 1)

/* Growable bytes ---------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static void out_of_memory(void) {
    static const char message[] = "minishell: out of memory\n";
    (void)!write(2, message, sizeof message - 1);
    _exit(1);
}

static void buf_add(Buf *buf, const void *bytes, size_t count) {
    if (buf->len + count + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 256;
        while (cap < buf->len + count + 1)
            cap *= 2;
        char *grown = realloc(buf->data, cap);
        if (grown == NULL)
            out_of_memory();
        buf->data = grown;
        buf->cap = cap;
    }
    if (count > 0) /* bytes may be the NULL of an empty Buf */
        memcpy(buf->data + buf->len, bytes, count);
    buf->len += count;
    buf->data[buf->len] = '\0'; /* so that a Buf is also a C string */
}

static void buf_str(Buf *buf, const char *text) { buf_add(buf, text, strlen(text)); }

static void buf_byte(Buf *buf, char byte) { buf_add(buf, &byte, 1); }

/* The strings up to NULL, joined into a new C string. */
static char *join(const char *first, ...) {
    Buf text = {0};
    va_list parts;
    va_start(parts, first);
    for (const char *part = first; part != NULL; part = va_arg(parts, const char *))
        buf_str(&text, part);
    va_end(parts);
    return text.data;
}

/* Output and errors -------------------------------------------------------- */

/* To stdout, stderr or the socket: SIGPIPE is ignored, so a reader that left is EPIPE. */
static int write_all(int fd, const char *bytes, size_t count) {
    while (count > 0) {
        ssize_t written = write(fd, bytes, count);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        bytes += written;
        count -= (size_t)written;
    }
    return 0;
}

/* One line `minishell: <message>` on stderr; the exit status 1. The message
 * may quote a server's bytes, NULs included. */
static int report_bytes(const char *message, size_t length) {
    Buf line = {0};
    buf_str(&line, "minishell: ");
    buf_add(&line, message, length);
    buf_byte(&line, '\n');
    (void)!write_all(2, line.data, line.len);
    free(line.data);
    return 1;
}

static int report(const char *message) { return report_bytes(message, strlen(message)); }

/* Go's (and client.py's) wording of a system error: lower case. */
static const char *reason(int error) {
    static __thread char text[128];
    snprintf(text, sizeof text, "%s", strerror(error));
    for (char *c = text; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return text;
}

/* What a stdout that went away ends with: the status of SIGPIPE, no words. */
#define STATUS_STDOUT_GONE 141

static int write_stdout(const char *bytes, size_t count) {
    if (write_all(1, bytes, count) == 0)
        return 0;
    if (errno == EPIPE)
        _exit(STATUS_STDOUT_GONE);
    _exit(report(join("write stdout: ", reason(errno), NULL)));
}

/* The socket --------------------------------------------------------------- */

static char *socket_path(const char *base) {
    /* control.socket_path */
    Buf path = {0};
    buf_str(&path, base);
    if (path.len > 0 && path.data[path.len - 1] != '/')
        buf_byte(&path, '/');
    buf_str(&path, PROTOCOL_SOCKET_NAME);
    return path.data;
}

static int report_lost(const char *path) {
    return report(join("connection to ", path, " lost", NULL));
}

/* A connected socket, or -1 once the failure is reported. */
static int connect_to(const char *path) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    const char *failure = "AF_UNIX path too long"; /* Python's words for it */
    if (strlen(path) < sizeof address.sun_path) {
        strcpy(address.sun_path, path);
        int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        while (sock >= 0 && connect(sock, (struct sockaddr *)&address, sizeof address) < 0) {
            if (errno != EINTR) {
                close(sock);
                sock = -1;
            }
        }
        if (sock >= 0)
            return sock;
        failure = reason(errno);
    }
    report(join("cannot connect to ", path, ": ", failure, NULL));
    return -1;
}

/* Requests: JSON strings and minimega's quoting, for printable ASCII -------- */

static int printable_ascii(const char *text) {
    for (; *text; text++)
        if (*text < 0x20 || *text > 0x7e)
            return 0;
    return 1;
}

static void add_escaped(Buf *buf, const char *text) {
    for (; *text; text++) {
        if (*text == '"' || *text == '\\')
            buf_byte(buf, '\\');
        buf_byte(buf, *text);
    }
}

static void add_json_string(Buf *buf, const char *text) {
    buf_byte(buf, '"');
    add_escaped(buf, text);
    buf_byte(buf, '"');
}

/* client.quote_join: a word holding whitespace is put in double quotes, with
 * only quotes and backslashes escaped in printable ASCII. */
static void add_quoted_words(Buf *buf, char *const *words, int count) {
    for (int i = 0; i < count; i++) {
        if (i > 0)
            buf_byte(buf, ' ');
        if (strchr(words[i], ' ') != NULL)
            add_json_string(buf, words[i]);
        else
            buf_str(buf, words[i]);
    }
}

/* -pipe ---------------------------------------------------------------------- */

static struct {
    int sock;
    const char *path;
    /* Set by the stdin thread before it shuts the socket down, which is what
     * ends the main thread's receiving: read after that. */
    int stdin_done;
    const char *failure;
} attachment;

static char stdin_buffer[PROTOCOL_LINE_MAX + CHUNK]; /* untouched pages cost nothing */
static char socket_buffer[CHUNK];

static const char SOCKET_GONE[] = "the connection broke";

/* Send stdin in whole lines, holding back a line until its newline arrives,
 * so that nothing of a line of PROTOCOL_LINE_MAX bytes or more is ever sent.
 * Only a line that spans reads needs counting: one inside a read is shorter.
 * NULL once all is sent, else what went wrong. */
static const char *send_lines(void) {
    size_t held = 0; /* the start of a line whose newline has not come */
    for (;;) {
        ssize_t count = read(0, stdin_buffer + held, CHUNK);
        if (count < 0) {
            if (errno == EINTR)
                continue;
            return join("read stdin: ", reason(errno), NULL);
        }
        if (count == 0)
            break;
        char *fresh = stdin_buffer + held;
        char *last = memrchr(fresh, '\n', (size_t)count);
        if (last == NULL) {
            held += (size_t)count;
            if (held >= PROTOCOL_LINE_MAX)
                return PROTOCOL_LINE_TOO_LONG;
            continue;
        }
        if (held > 0 && held + (size_t)((char *)memchr(fresh, '\n', (size_t)count) - fresh) >=
                            PROTOCOL_LINE_MAX)
            return PROTOCOL_LINE_TOO_LONG;
        size_t complete = (size_t)(last + 1 - stdin_buffer);
        if (write_all(attachment.sock, stdin_buffer, complete) < 0)
            return SOCKET_GONE;
        held = held + (size_t)count - complete;
        memmove(stdin_buffer, stdin_buffer + complete, held);
    }
    /* a last line without its newline: the server adds it */
    if (held > 0 && write_all(attachment.sock, stdin_buffer, held) < 0)
        return SOCKET_GONE;
    return NULL;
}

static void *copy_stdin(void *unused) {
    (void)unused;
    const char *failure = send_lines();
    if (failure == NULL) {
        __atomic_store_n(&attachment.stdin_done, 1, __ATOMIC_SEQ_CST);
        shutdown(attachment.sock, SHUT_WR);
    } else if (failure != SOCKET_GONE) { /* which the main thread sees too */
        /* Stop receiving too: that wakes the main thread. */
        __atomic_store_n(&attachment.failure, failure, __ATOMIC_SEQ_CST);
        shutdown(attachment.sock, SHUT_RDWR);
    }
    return NULL;
}

/* Copy the socket to stdout until the server closes; stdin goes to the socket
 * on a thread of its own. The main thread is the one that ends the process:
 * the stdin thread may stay blocked in read() for ever. */
static int run_attachment(const char *leftover, size_t leftover_len) {
    pthread_attr_t attributes;
    pthread_t thread;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, 64 * 1024); /* it needs almost none */
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    int error = pthread_create(&thread, &attributes, copy_stdin, NULL);
    pthread_attr_destroy(&attributes);
    if (error != 0)
        return report(join("cannot start a thread: ", reason(error), NULL));
    write_stdout(leftover, leftover_len);
    for (;;) {
        ssize_t count = recv(attachment.sock, socket_buffer, sizeof socket_buffer, 0);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            break; /* closed, or reset: the daemon died with our bytes unread */
        write_stdout(socket_buffer, (size_t)count);
    }
    const char *failure = __atomic_load_n(&attachment.failure, __ATOMIC_SEQ_CST);
    if (failure != NULL)
        return report(failure);
    if (__atomic_load_n(&attachment.stdin_done, __ATOMIC_SEQ_CST))
        return 0;
    return report_lost(attachment.path);
}

static int run_pipe(const char *base, const char *name) {
    char *path = socket_path(base);
    int sock = connect_to(path);
    if (sock < 0)
        return 1;
    Buf request = {0};
    buf_str(&request, "{\"PlumbPipe\":\"");
    if (strstr(name, "//") == NULL)
        buf_str(&request, PROTOCOL_DEFAULT_NAMESPACE "//");
    add_escaped(&request, name);
    buf_str(&request, "\",\"Raw\":true}\n");
    if (write_all(sock, request.data, request.len) < 0)
        return report_lost(path);
    char received[1 << 16];
    size_t have = 0;
    while (have < RAW_ACK_LEN) {
        struct pollfd ready = {.fd = sock, .events = POLLIN};
        int polled = poll(&ready, 1, (int)(PROTOCOL_ACK_TIMEOUT * 1000));
        if (polled < 0 && errno == EINTR)
            continue;
        if (polled == 0)
            return report(PROTOCOL_NOT_RAW);
        ssize_t count = polled < 0 ? -1 : recv(sock, received + have, sizeof received - have, 0);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            return report_lost(path);
        have += (size_t)count;
        size_t compared = have < RAW_ACK_LEN ? have : RAW_ACK_LEN;
        if (memcmp(received, PROTOCOL_RAW_ACK, compared) != 0)
            return report(PROTOCOL_NOT_RAW);
    }
    attachment.sock = sock;
    attachment.path = path;
    return run_attachment(received + RAW_ACK_LEN, have - RAW_ACK_LEN);
}

/* UTF-8, as Python decodes it with errors="replace" --------------------------- */

#define REPLACEMENT 0xFFFD

/* The code point at text (REPLACEMENT for a maximal invalid subpart, as
 * Python's decoder counts them); returns how many bytes it took. */
static size_t next_code_point(const unsigned char *text, const unsigned char *end,
                              uint32_t *code) {
    unsigned char lead = text[0];
    *code = lead;
    if (lead < 0x80)
        return 1;
    *code = REPLACEMENT;
    if (lead < 0xC2 || lead > 0xF4)
        return 1;
    size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    /* the second byte's range: none makes an overlong form, a surrogate, or more than U+10FFFF */
    unsigned char low = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
    unsigned char high = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
    uint32_t value = lead & (0x7F >> length);
    for (size_t i = 1; i < length; i++) {
        if (text + i >= end || text[i] < (i == 1 ? low : 0x80) || text[i] > (i == 1 ? high : 0xBF))
            return i;
        value = (value << 6) | (text[i] & 0x3F);
    }
    *code = value;
    return length;
}

static void add_code_point(Buf *buf, uint32_t code) {
    if (code >= 0xD800 && code <= 0xDFFF)
        code = REPLACEMENT; /* a lone surrogate has no UTF-8 */
    if (code < 0x80) {
        buf_byte(buf, (char)code);
        return;
    }
    int length = code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    char bytes[4];
    for (int i = length - 1; i > 0; i--, code >>= 6)
        bytes[i] = (char)(0x80 | (code & 0x3F));
    bytes[0] = (char)(((0xFF00 >> length) & 0xFF) | code);
    buf_add(buf, bytes, (size_t)length);
}

/* Go's unicode.IsSpace */
static int go_space(uint32_t code) {
    return (code >= '\t' && code <= '\r') || code == ' ' || code == 0x85 || code == 0xA0 ||
           code == 0x1680 || (code >= 0x2000 && code <= 0x200A) || code == 0x2028 ||
           code == 0x2029 || code == 0x202F || code == 0x205F || code == 0x3000;
}

/* strings.TrimSpace of valid UTF-8 */
static void trim_space(const char *text, size_t length, size_t *start, size_t *stop) {
    const unsigned char *bytes = (const unsigned char *)text, *end = bytes + length;
    *start = *stop = 0;
    int seen = 0;
    for (size_t at = 0; at < length;) {
        uint32_t code;
        size_t step = next_code_point(bytes + at, end, &code);
        if (!go_space(code)) {
            if (!seen)
                *start = at;
            seen = 1;
            *stop = at + step;
        }
        at += step;
    }
}

/* JSON replies: the format control.py's docstring defines ------------------------ */

/* What -e prints of one reply, as minimega's clients do. */
typedef struct {
    Buf rendered;
    Buf errors; /* "Error (host): text" lines, joined by newlines */
    int more;
} Reply;

typedef struct {
    const unsigned char *at, *end;
} Scan;

static void skip_space(Scan *scan) {
    while (scan->at < scan->end &&
           (*scan->at == ' ' || *scan->at == '\t' || *scan->at == '\n' || *scan->at == '\r'))
        scan->at++;
}

static int take(Scan *scan, char expected) {
    skip_space(scan);
    if (scan->at < scan->end && *scan->at == expected) {
        scan->at++;
        return 1;
    }
    return 0;
}

static int take_word(Scan *scan, const char *word) {
    size_t length = strlen(word);
    skip_space(scan);
    if ((size_t)(scan->end - scan->at) >= length && memcmp(scan->at, word, length) == 0) {
        scan->at += length;
        return 1;
    }
    return 0;
}

static int hex_digits(Scan *scan, uint32_t *value) {
    *value = 0;
    for (int i = 0; i < 4; i++, scan->at++) {
        if (scan->at >= scan->end || !isxdigit(*scan->at))
            return 0;
        int digit = isdigit(*scan->at) ? *scan->at - '0' : (*scan->at | 0x20) - 'a' + 10;
        *value = *value << 4 | (uint32_t)digit;
    }
    return 1;
}

/* A string, decoded into out if given (lone surrogates as U+FFFD). */
static int parse_string(Scan *scan, Buf *out) {
    Buf ignored = {0};
    Buf *text = out ? out : &ignored;
    if (!take(scan, '"'))
        return 0;
    int valid = 0;
    while (scan->at < scan->end) {
        unsigned char c = *scan->at;
        if (c == '"') {
            scan->at++;
            valid = 1;
            break;
        }
        if (c < 0x20)
            break; /* no raw control characters */
        if (c != '\\') {
            uint32_t code;
            scan->at += next_code_point(scan->at, scan->end, &code);
            add_code_point(text, code);
            continue;
        }
        if (++scan->at >= scan->end)
            break;
        c = *scan->at++;
        const char *simple = strchr("\"\\/bfnrt", c);
        if (c != 0 && simple != NULL) {
            buf_byte(text, "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"]);
            continue;
        }
        uint32_t code, low;
        if (c != 'u' || !hex_digits(scan, &code))
            break;
        if (code >= 0xD800 && code <= 0xDBFF && scan->end - scan->at >= 6 && scan->at[0] == '\\' &&
            scan->at[1] == 'u') {
            Scan after = {scan->at + 2, scan->end};
            if (hex_digits(&after, &low) && low >= 0xDC00 && low <= 0xDFFF) {
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                scan->at = after.at;
            }
        }
        add_code_point(text, code);
    }
    free(ignored.data);
    return valid;
}

static int take_digits(Scan *scan) {
    const unsigned char *start = scan->at;
    while (scan->at < scan->end && *scan->at >= '0' && *scan->at <= '9')
        scan->at++;
    return scan->at > start;
}

/* A number, by RFC 8259's grammar; its value is never needed. */
static int skip_number(Scan *scan) {
    if (scan->at < scan->end && *scan->at == '-')
        scan->at++;
    if (scan->at < scan->end && *scan->at == '0')
        scan->at++;
    else if (scan->at >= scan->end || *scan->at < '1' || *scan->at > '9' || !take_digits(scan))
        return 0;
    if (scan->at < scan->end && *scan->at == '.' && (++scan->at, !take_digits(scan)))
        return 0;
    if (scan->at < scan->end && (*scan->at == 'e' || *scan->at == 'E')) {
        scan->at++;
        if (scan->at < scan->end && (*scan->at == '+' || *scan->at == '-'))
            scan->at++;
        return take_digits(scan);
    }
    return 1;
}

/* Any value whose arrays and objects nest at most `depth` deep. */
static int skip_value(Scan *scan, int depth) {
    skip_space(scan);
    if (scan->at >= scan->end)
        return 0;
    if (*scan->at == '"')
        return parse_string(scan, NULL);
    if (*scan->at == '{' || *scan->at == '[') {
        int object = *scan->at++ == '{';
        char close = object ? '}' : ']';
        if (depth == 0)
            return 0;
        if (take(scan, close))
            return 1;
        do {
            if (object && (!parse_string(scan, NULL) || !take(scan, ':')))
                return 0;
            if (!skip_value(scan, depth - 1))
                return 0;
        } while (take(scan, ','));
        return take(scan, close);
    }
    return take_word(scan, "true") || take_word(scan, "false") || take_word(scan, "null") ||
           skip_number(scan);
}

/* An array of strings; with `nested`, an array of such arrays. */
static int skip_strings(Scan *scan, int nested) {
    if (!take(scan, '['))
        return 0;
    if (take(scan, ']'))
        return 1;
    do {
        if (nested ? !skip_strings(scan, 0) : !parse_string(scan, NULL))
            return 0;
    } while (take(scan, ','));
    return take(scan, ']');
}

static int parse_bool(Scan *scan, int *value) {
    *value = take_word(scan, "true");
    return *value || take_word(scan, "false");
}

/* An object's key and its colon: its index in `names`, or -1 if it is none of
 * them or comes a second time. */
static int take_key(Scan *scan, const char *const *names, unsigned *seen) {
    Buf key = {0};
    int found = -1;
    if (parse_string(scan, &key) && take(scan, ':'))
        for (int i = 0; names[i] != NULL; i++)
            if (key.len == strlen(names[i]) && memcmp(key.data, names[i], key.len) == 0 &&
                !(*seen & 1u << i)) {
                *seen |= 1u << i;
                found = i;
            }
    free(key.data);
    return found;
}

static const char *const RESPONSE_KEYS[] = {"Host", "Error", "Response", "Header", "Tabular",
                                            "Data", NULL};

/* One object of Resp: `Error (<Host>): <Error>` added when its Error is not empty. */
static int parse_response(Scan *scan, Buf *errors) {
    Buf fields[2] = {{0}, {0}}; /* Host, Error */
    unsigned seen = 0;
    int valid = take(scan, '{');
    if (valid && !take(scan, '}')) {
        do {
            int key = take_key(scan, RESPONSE_KEYS, &seen);
            if (key == 0 || key == 1)
                valid = parse_string(scan, &fields[key]);
            else if (key == 2)
                valid = parse_string(scan, NULL);
            else if (key == 3 || key == 4)
                valid = take_word(scan, "null") || skip_strings(scan, key == 4);
            else
                valid = key == 5 && skip_value(scan, PROTOCOL_DATA_DEPTH_MAX);
        } while (valid && take(scan, ','));
        valid = valid && take(scan, '}');
    }
    if (valid && fields[1].len > 0) {
        if (errors->len > 0)
            buf_byte(errors, '\n');
        buf_str(errors, "Error (");
        buf_add(errors, fields[0].data, fields[0].len);
        buf_str(errors, "): ");
        buf_add(errors, fields[1].data, fields[1].len);
    }
    free(fields[0].data);
    free(fields[1].data);
    return valid;
}

static int parse_resp(Scan *scan, Buf *errors) {
    if (take_word(scan, "null"))
        return 1;
    if (!take(scan, '['))
        return 0;
    if (take(scan, ']'))
        return 1;
    do {
        if (!parse_response(scan, errors))
            return 0;
    } while (take(scan, ','));
    return take(scan, ']');
}

static const char *const REPLY_KEYS[] = {"Resp", "Rendered", "More", "Status", "Suggest", NULL};

/* A reply line; 0 if it is not one. */
static int parse_reply(const char *line, size_t length, Reply *reply) {
    Scan scan = {(const unsigned char *)line, (const unsigned char *)line + length};
    unsigned seen = 0;
    int valid = take(&scan, '{'), status;
    reply->rendered.len = reply->errors.len = 0;
    reply->more = 0;
    if (valid && !take(&scan, '}')) {
        do {
            switch (take_key(&scan, REPLY_KEYS, &seen)) {
            case 0:
                valid = parse_resp(&scan, &reply->errors);
                break;
            case 1:
                valid = parse_string(&scan, &reply->rendered);
                break;
            case 2:
                valid = parse_bool(&scan, &reply->more);
                break;
            case 3:
                valid = parse_bool(&scan, &status);
                break;
            case 4:
                valid = skip_strings(&scan, 0);
                break;
            default:
                valid = 0;
            }
        } while (valid && take(&scan, ','));
        valid = valid && take(&scan, '}');
    }
    skip_space(&scan);
    return valid && scan.at == scan.end;
}

/* -e ------------------------------------------------------------------------------ */

static int report_unexpected(const char *path, const char *line, size_t length) {
    /* the line as Python shows line[:80]: 80 code points, invalid bytes replaced */
    Buf message = {0};
    buf_str(&message, "unexpected reply from ");
    buf_str(&message, path);
    buf_str(&message, ": ");
    const unsigned char *at = (const unsigned char *)line, *end = at + length;
    for (int shown = 0; at < end && shown < PROTOCOL_EXCERPT_CHARS; shown++) {
        uint32_t code;
        at += next_code_point(at, end, &code);
        add_code_point(&message, code);
    }
    return report_bytes(message.data, message.len);
}

/* Print a reply as minimega's clients do; 1 if it carried an error. */
static int show(Reply *reply) {
    if (reply->rendered.len > 0) {
        buf_byte(&reply->rendered, '\n');
        write_stdout(reply->rendered.data, reply->rendered.len);
    }
    if (reply->errors.len == 0)
        return 0;
    size_t start, stop;
    trim_space(reply->errors.data, reply->errors.len, &start, &stop);
    Buf text = {0};
    buf_add(&text, reply->errors.data + start, stop - start);
    buf_byte(&text, '\n');
    (void)!write_all(2, text.data, text.len);
    free(text.data);
    return 1;
}

static int run_execute(const char *base, const char *namespace, char *const *words, int count) {
    Buf command = {0};
    /* A single word goes as it is (minimega's main.go), quotes and all. */
    if (count == 1)
        buf_str(&command, words[0]);
    else
        add_quoted_words(&command, words, count);
    char *path = socket_path(base);
    int sock = connect_to(path);
    if (sock < 0)
        return 1;
    if (command.len == 0) /* minimega sends nothing either */
        return 0;
    Buf request = {0};
    buf_str(&request, "{\"Command\":\"");
    if (namespace[0] != '\0') {
        buf_str(&request, "namespace ");
        char *const namespace_word[] = {(char *)namespace};
        Buf quoted = {0};
        add_quoted_words(&quoted, namespace_word, 1);
        add_escaped(&request, quoted.data);
        buf_byte(&request, ' ');
    }
    add_escaped(&request, command.data);
    buf_str(&request, "\"}\n");
    if (write_all(sock, request.data, request.len) < 0)
        return report_lost(path);

    Buf received = {0};
    size_t scanned = 0; /* bytes of received known to hold no newline */
    Reply reply = {0};
    int failed = 0;
    for (;;) {
        char *newline = received.len > scanned
                            ? memchr(received.data + scanned, '\n', received.len - scanned)
                            : NULL;
        if (newline == NULL) {
            scanned = received.len;
            char chunk[1 << 16];
            ssize_t got = recv(sock, chunk, sizeof chunk, 0);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                return report_lost(path);
            buf_add(&received, chunk, (size_t)got);
            continue;
        }
        size_t length = (size_t)(newline - received.data);
        int blank = 1; /* JSON's white space alone */
        for (size_t i = 0; i < length && blank; i++)
            blank = received.data[i] == ' ' || received.data[i] == '\t' || received.data[i] == '\r';
        if (!blank) {
            if (!parse_reply(received.data, length, &reply))
                return report_unexpected(path, received.data, length);
            failed |= show(&reply);
            if (!reply.more)
                return failed;
        }
        received.len -= length + 1;
        memmove(received.data, newline + 1, received.len);
        scanned = 0;
    }
}

/* The command line --------------------------------------------------------------- */

/* Run the Python front end beside this program with the same arguments. */
static int hand_to_python(char **argv) {
    struct stat input;
    if (fstat(0, &input) == 0 && S_ISDIR(input.st_mode)) {
        /* CPython dies before any code runs when its stdin is a directory: give
         * it /dev/null, and say why to whatever means to read stdin. */
        int null = open("/dev/null", O_RDONLY);
        if (null > 0) {
            dup2(null, 0);
            close(null);
        }
        setenv(PROTOCOL_STDIN_ERROR_ENV, reason(EISDIR), 1);
    }
    char self[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    Buf front_end = {0};
    if (length > 0) {
        self[length] = '\0';
    } else { /* no /proc: trust argv[0] */
        strncpy(self, argv[0], sizeof self - 1);
        self[sizeof self - 1] = '\0';
    }
    char *slash = strrchr(self, '/');
    if (slash != NULL)
        buf_add(&front_end, self, (size_t)(slash + 1 - self));
    buf_str(&front_end, PYTHON_FRONT_END);
    argv[0] = front_end.data;
    if (slash != NULL)
        execv(front_end.data, argv);
    else /* found on PATH: so is its neighbour */
        execvp(front_end.data, argv);
    return report(join("cannot run ", front_end.data, ": ", reason(errno), NULL));
}

/* Ctrl-C: the status the Python client returns for it. A plain exit, not death
 * by SIGINT, which would also stop the shell script that ran us. */
static void interrupted(int signal_number) {
    (void)signal_number;
    _exit(130);
}

int main(int argc, char **argv) {
    if (argc < 1)
        return report("no program name in argv"); /* nothing to hand on */
    /* cli.scan_client: the client call that argv spells plainly. Flags come
     * first, as Go's flag package wants them (-e takes the words after the
     * last flag); anything this scan does not know goes to Python. */
    const char *base = PROTOCOL_DEFAULT_BASE, *namespace = "", *pipe_name = "";
    int e = 0, attach = 0, index = 1;
    for (; index < argc; index++) {
        const char *arg = argv[index];
        if (strcmp(arg, "--") == 0) {
            index++;
            break;
        }
        if (arg[0] != '-' || arg[1] == '\0')
            break;
        const char *name = arg + (arg[1] == '-' ? 2 : 1);
        const char *equals = strchr(name, '=');
        size_t name_length = equals ? (size_t)(equals - name) : strlen(name);
        const char **value = NULL;
        if (name_length == 4 && strncmp(name, "base", 4) == 0)
            value = &base;
        else if (name_length == 9 && strncmp(name, "namespace", 9) == 0)
            value = &namespace;
        else if (name_length == 4 && strncmp(name, "pipe", 4) == 0)
            value = &pipe_name;
        if (value != NULL) {
            if (equals != NULL) {
                *value = equals + 1;
            } else {
                if (++index == argc)
                    return hand_to_python(argv);
                *value = argv[index];
            }
        } else if (equals == NULL && strcmp(name, "e") == 0) {
            e = 1;
        } else if (equals == NULL && strcmp(name, "attach") == 0) {
            attach = 1;
        } else {
            return hand_to_python(argv);
        }
    }
    char *const *words = argv + index;
    int word_count = argc - index;
    if (!(pipe_name[0] || e) || (word_count > 0 && !(e && !pipe_name[0])))
        return hand_to_python(argv); /* -attach, the prompt, scripts, -h... */
    int plain = printable_ascii(base) && printable_ascii(namespace) && printable_ascii(pipe_name);
    for (int i = 0; i < word_count; i++)
        plain &= printable_ascii(words[i]);
    if (!plain)
        return hand_to_python(argv); /* the quoting of any text is Python's */
    (void)attach; /* -pipe and -e come before it, as in minimega */
    signal(SIGPIPE, SIG_IGN); /* a stdout that goes away is an EPIPE: status 141 */
    signal(SIGINT, interrupted);
    if (pipe_name[0])
        return run_pipe(base, pipe_name);
    return run_execute(base, namespace, words, word_count);
}
