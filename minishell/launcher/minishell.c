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
 * tests/test_client.py runs every client case against both. To stay small it
 * serves only command lines that it understands entirely: -pipe or -e, with
 * -base and -namespace, in printable ASCII. Anything else (-attach, other
 * flags, words that need minimega's full quoting, -h) goes to the Python front
 * end unchanged.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_BASE "/tmp/minishell"
#define DEFAULT_NAMESPACE "minimega"
#define PYTHON_FRONT_END "minishell-py"
/* minimega's TOKEN_MAX: a line this long (without its newline) is refused. */
#define LINE_MAX_BYTES (1 << 20)
/* Never more than LINE_MAX_BYTES: a line inside one read is then shorter. */
#define CHUNK (1 << 20)
/* How long -pipe waits for the server's ack: a minishell answers at once; a
 * real minimega never does (it ignores the Raw field). */
#define ACK_TIMEOUT_MS 5000
/* Deeper replies are "unexpected" (the Python client's limit is its recursion's). */
#define JSON_DEPTH_MAX 512
#define INT_DIGITS_MAX 4300

static const char RAW_ACK[] = "{\"Raw\":true}\n";
#define RAW_ACK_LEN (sizeof RAW_ACK - 1)
static const char NOT_RAW[] = "the server does not speak minishell's raw pipe protocol";
static const char LINE_TOO_LONG[] = "line longer than 1 MiB on stdin";

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
    memcpy(buf->data + buf->len, bytes, count);
    buf->len += count;
    buf->data[buf->len] = '\0'; /* so that a Buf is also a C string */
}

static void buf_str(Buf *buf, const char *text) { buf_add(buf, text, strlen(text)); }

static void buf_byte(Buf *buf, char byte) { buf_add(buf, &byte, 1); }

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
static void add_reason(Buf *buf, int error) {
    for (const char *c = strerror(error); *c; c++)
        buf_byte(buf, (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a') : *c);
}

/* What a stdout that went away ends with: the status of SIGPIPE, no words. */
#define STATUS_STDOUT_GONE 141

static int write_stdout(const char *bytes, size_t count) {
    if (write_all(1, bytes, count) == 0)
        return 0;
    if (errno == EPIPE)
        _exit(STATUS_STDOUT_GONE);
    Buf message = {0};
    buf_str(&message, "write stdout: ");
    add_reason(&message, errno);
    _exit(report(message.data));
}

/* The socket --------------------------------------------------------------- */

static char *socket_path(const char *base) {
    /* os.path.join(base, "minimega") */
    Buf path = {0};
    buf_str(&path, base);
    if (path.len > 0 && path.data[path.len - 1] != '/')
        buf_byte(&path, '/');
    buf_str(&path, "minimega");
    return path.data;
}

static int report_lost(const char *path) {
    Buf message = {0};
    buf_str(&message, "connection to ");
    buf_str(&message, path);
    buf_str(&message, " lost");
    return report(message.data);
}

/* A connected socket, or -1 once the failure is reported. */
static int connect_to(const char *path) {
    Buf message = {0};
    buf_str(&message, "cannot connect to ");
    buf_str(&message, path);
    buf_str(&message, ": ");
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof address.sun_path) {
        buf_str(&message, "AF_UNIX path too long"); /* Python's words for it */
        report(message.data);
        return -1;
    }
    strcpy(address.sun_path, path);
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0) {
        add_reason(&message, errno);
        report(message.data);
        return -1;
    }
    while (connect(sock, (struct sockaddr *)&address, sizeof address) < 0) {
        if (errno == EINTR)
            continue;
        add_reason(&message, errno);
        report(message.data);
        close(sock);
        return -1;
    }
    free(message.data);
    return sock;
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

/* minimega's quoteJoin: a word holding whitespace is strconv.Quote'd, which
 * for printable ASCII escapes only quotes and backslashes. */
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
    Buf failure_text;
} attachment;

static char stdin_buffer[LINE_MAX_BYTES + CHUNK]; /* untouched pages cost nothing */
static char socket_buffer[CHUNK];

enum { SENT_ALL, STDIN_FAILED, SOCKET_GONE };

static int stdin_failure(const char *message) {
    buf_str(&attachment.failure_text, message);
    return STDIN_FAILED;
}

/* Send stdin in whole lines, holding back a line until its newline arrives,
 * so that nothing of a line of LINE_MAX_BYTES or more is ever sent. Only a
 * line that spans reads needs counting: one inside a read is shorter. */
static int send_lines(void) {
    size_t held = 0; /* the start of a line whose newline has not come */
    for (;;) {
        ssize_t count = read(0, stdin_buffer + held, CHUNK);
        if (count < 0) {
            if (errno == EINTR)
                continue;
            buf_str(&attachment.failure_text, "read stdin: ");
            add_reason(&attachment.failure_text, errno);
            return STDIN_FAILED;
        }
        if (count == 0)
            break;
        char *fresh = stdin_buffer + held;
        char *last = memrchr(fresh, '\n', (size_t)count);
        if (last == NULL) {
            held += (size_t)count;
            if (held >= LINE_MAX_BYTES)
                return stdin_failure(LINE_TOO_LONG);
            continue;
        }
        if (held > 0 && held + (size_t)((char *)memchr(fresh, '\n', (size_t)count) - fresh) >=
                            LINE_MAX_BYTES)
            return stdin_failure(LINE_TOO_LONG);
        size_t complete = (size_t)(last + 1 - stdin_buffer);
        if (write_all(attachment.sock, stdin_buffer, complete) < 0)
            return SOCKET_GONE;
        held = held + (size_t)count - complete;
        memmove(stdin_buffer, stdin_buffer + complete, held);
    }
    /* a last line without its newline: the server adds it */
    if (held > 0 && write_all(attachment.sock, stdin_buffer, held) < 0)
        return SOCKET_GONE;
    return SENT_ALL;
}

static void *copy_stdin(void *unused) {
    (void)unused;
    switch (send_lines()) {
    case SENT_ALL:
        __atomic_store_n(&attachment.stdin_done, 1, __ATOMIC_SEQ_CST);
        shutdown(attachment.sock, SHUT_WR);
        break;
    case STDIN_FAILED:
        /* Stop receiving too: that wakes the main thread. */
        __atomic_store_n(&attachment.failure, attachment.failure_text.data, __ATOMIC_SEQ_CST);
        shutdown(attachment.sock, SHUT_RDWR);
        break;
    default: /* the connection broke: the main thread sees it too */
        break;
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
    if (error != 0) {
        Buf message = {0};
        buf_str(&message, "cannot start a thread: ");
        add_reason(&message, error);
        return report(message.data);
    }
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
        buf_str(&request, DEFAULT_NAMESPACE "//");
    add_escaped(&request, name);
    buf_str(&request, "\",\"Raw\":true}\n");
    if (write_all(sock, request.data, request.len) < 0)
        return report_lost(path);
    char received[1 << 16];
    size_t have = 0;
    while (have < RAW_ACK_LEN) {
        struct pollfd ready = {.fd = sock, .events = POLLIN};
        int polled = poll(&ready, 1, ACK_TIMEOUT_MS);
        if (polled < 0 && errno == EINTR)
            continue;
        if (polled == 0)
            return report(NOT_RAW);
        ssize_t count = polled < 0 ? -1 : recv(sock, received + have, sizeof received - have, 0);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            return report_lost(path);
        have += (size_t)count;
        size_t compared = have < RAW_ACK_LEN ? have : RAW_ACK_LEN;
        if (memcmp(received, RAW_ACK, compared) != 0)
            return report(NOT_RAW);
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
    if (lead < 0x80) {
        *code = lead;
        return 1;
    }
    size_t length;
    unsigned char low = 0x80, high = 0xBF; /* the second byte's range */
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
        *code = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        *code = lead & 0x0F;
        if (lead == 0xE0)
            low = 0xA0;
        else if (lead == 0xED)
            high = 0x9F; /* no surrogates */
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        *code = lead & 0x07;
        if (lead == 0xF0)
            low = 0x90;
        else if (lead == 0xF4)
            high = 0x8F;
    } else {
        *code = REPLACEMENT;
        return 1;
    }
    for (size_t i = 1; i < length; i++) {
        unsigned char byte = text + i < end ? text[i] : 0;
        unsigned char min = i == 1 ? low : 0x80, max = i == 1 ? high : 0xBF;
        if (text + i >= end || byte < min || byte > max) {
            *code = REPLACEMENT;
            return i;
        }
        *code = (*code << 6) | (byte & 0x3F);
    }
    return length;
}

static void add_code_point(Buf *buf, uint32_t code) {
    char bytes[4];
    size_t length;
    if (code >= 0xD800 && code <= 0xDFFF)
        code = REPLACEMENT; /* a lone surrogate has no UTF-8 */
    if (code < 0x80) {
        bytes[0] = (char)code;
        length = 1;
    } else if (code < 0x800) {
        bytes[0] = (char)(0xC0 | (code >> 6));
        bytes[1] = (char)(0x80 | (code & 0x3F));
        length = 2;
    } else if (code < 0x10000) {
        bytes[0] = (char)(0xE0 | (code >> 12));
        bytes[1] = (char)(0x80 | ((code >> 6) & 0x3F));
        bytes[2] = (char)(0x80 | (code & 0x3F));
        length = 3;
    } else {
        bytes[0] = (char)(0xF0 | (code >> 18));
        bytes[1] = (char)(0x80 | ((code >> 12) & 0x3F));
        bytes[2] = (char)(0x80 | ((code >> 6) & 0x3F));
        bytes[3] = (char)(0x80 | (code & 0x3F));
        length = 4;
    }
    buf_add(buf, bytes, length);
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

/* JSON replies ----------------------------------------------------------------- */

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

static int hex_digits(Scan *scan, uint32_t *value) {
    *value = 0;
    for (int i = 0; i < 4; i++) {
        if (scan->at >= scan->end)
            return 0;
        unsigned char c = *scan->at++;
        uint32_t digit;
        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if (c >= 'a' && c <= 'f')
            digit = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            digit = c - 'A' + 10;
        else
            return 0;
        *value = *value << 4 | digit;
    }
    return 1;
}

/* A string at the scan (after optional space), decoded into out if given;
 * 0 if it is not valid strict JSON. */
static int parse_string(Scan *scan, Buf *out, size_t *length) {
    Buf ignored = {0};
    Buf *text = out ? out : &ignored;
    size_t before = text->len;
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
            break; /* strict: no raw control characters */
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
    if (length)
        *length = text->len - before;
    free(ignored.data);
    return valid;
}

static int parse_number(Scan *scan, int *truthy) {
    const unsigned char *start = scan->at;
    if (scan->at < scan->end && *scan->at == '-')
        scan->at++;
    if (scan->at >= scan->end || *scan->at < '0' || *scan->at > '9')
        return 0;
    if (*scan->at == '0')
        scan->at++;
    else
        while (scan->at < scan->end && *scan->at >= '0' && *scan->at <= '9')
            scan->at++;
    if (scan->at < scan->end && *scan->at == '.') {
        const unsigned char *digits = ++scan->at;
        while (scan->at < scan->end && *scan->at >= '0' && *scan->at <= '9')
            scan->at++;
        if (scan->at == digits)
            return 0;
    }
    if (scan->at < scan->end && (*scan->at == 'e' || *scan->at == 'E')) {
        scan->at++;
        if (scan->at < scan->end && (*scan->at == '+' || *scan->at == '-'))
            scan->at++;
        const unsigned char *digits = scan->at;
        while (scan->at < scan->end && *scan->at >= '0' && *scan->at <= '9')
            scan->at++;
        if (scan->at == digits)
            return 0;
    }
    size_t length = (size_t)(scan->at - start);
    if (memchr(start, '.', length) == NULL && memchr(start, 'e', length) == NULL &&
        memchr(start, 'E', length) == NULL) {
        /* an int: Python refuses more than 4300 digits (sys.int_info) */
        if (length - (*start == '-') > INT_DIGITS_MAX)
            return 0;
        *truthy = 0;
        for (const unsigned char *c = start; c < scan->at; c++)
            if (*c >= '1' && *c <= '9')
                *truthy = 1;
        return 1;
    }
    /* a float: false when it is 0.0, which 1e-400 is too */
    char *text = strndup((const char *)start, length);
    if (text == NULL)
        out_of_memory();
    *truthy = strtod(text, NULL) != 0;
    free(text);
    return 1;
}

static int take_word(Scan *scan, const char *word) {
    size_t length = strlen(word);
    if ((size_t)(scan->end - scan->at) >= length && memcmp(scan->at, word, length) == 0) {
        scan->at += length;
        return 1;
    }
    return 0;
}

/* Any value, skipped; *truthy tells what Python's bool() of it would. */
static int skip_value(Scan *scan, int depth, int *truthy) {
    skip_space(scan);
    if (scan->at >= scan->end || depth > JSON_DEPTH_MAX)
        return 0;
    size_t length;
    switch (*scan->at) {
    case '"':
        if (!parse_string(scan, NULL, &length))
            return 0;
        *truthy = length > 0;
        return 1;
    case '{':
    case '[': {
        int object = *scan->at++ == '{', ignored;
        char close = object ? '}' : ']';
        *truthy = 0;
        if (take(scan, close))
            return 1;
        *truthy = 1;
        do {
            if (object && (!parse_string(scan, NULL, &length) || !take(scan, ':')))
                return 0;
            if (!skip_value(scan, depth + 1, &ignored))
                return 0;
        } while (take(scan, ','));
        return take(scan, close);
    }
    case 't':
        *truthy = 1;
        return take_word(scan, "true");
    case 'f':
        *truthy = 0;
        return take_word(scan, "false");
    case 'n':
        *truthy = 0;
        return take_word(scan, "null");
    case 'N': /* Python's json reads these too */
        *truthy = 1;
        return take_word(scan, "NaN");
    case 'I':
        *truthy = 1;
        return take_word(scan, "Infinity");
    default:
        if (take_word(scan, "-Infinity")) {
            *truthy = 1;
            return 1;
        }
        return parse_number(scan, truthy);
    }
}

/* A field's text as Python's f-string would show a string; other values as
 * their JSON (minishell and minimega only ever send strings here). */
static int field_text(Scan *scan, Buf *text, int *truthy) {
    text->len = 0;
    buf_add(text, "", 0);
    skip_space(scan);
    if (scan->at < scan->end && *scan->at == '"') {
        size_t length;
        if (!parse_string(scan, text, &length))
            return 0;
        *truthy = length > 0;
        return 1;
    }
    const unsigned char *start = scan->at;
    if (!skip_value(scan, 1, truthy))
        return 0;
    buf_add(text, start, (size_t)(scan->at - start));
    return 1;
}

/* A decoded key is exactly this name (a key may hold "\u0000"). */
static int key_is(const Buf *key, const char *name) {
    return key->len == strlen(name) && memcmp(key->data, name, key->len) == 0;
}

/* One element of Resp: `Error (<Host>): <Error>` when its Error is truthy. */
static int parse_response(Scan *scan, Buf *errors) {
    Buf host = {0}, error = {0};
    int has_error = 0, truthy, valid = 0;
    scan->at++; /* the '{' */
    if (take(scan, '}')) {
        valid = 1;
        goto done;
    }
    Buf key = {0};
    do {
        key.len = 0;
        if (!parse_string(scan, &key, NULL) || !take(scan, ':'))
            goto done_key;
        if (key_is(&key, "Host")) {
            if (!field_text(scan, &host, &truthy))
                goto done_key;
        } else if (key_is(&key, "Error")) {
            if (!field_text(scan, &error, &has_error))
                goto done_key;
        } else if (!skip_value(scan, 2, &truthy)) {
            goto done_key;
        }
    } while (take(scan, ','));
    valid = take(scan, '}');
done_key:
    free(key.data);
done:
    if (valid && has_error) {
        if (errors->len > 0)
            buf_byte(errors, '\n');
        buf_str(errors, "Error (");
        if (host.data)
            buf_add(errors, host.data, host.len);
        buf_str(errors, "): ");
        buf_add(errors, error.data, error.len);
    }
    free(host.data);
    free(error.data);
    return valid;
}

static int parse_resp(Scan *scan, Buf *errors) {
    int truthy;
    errors->len = 0; /* a repeated key: the last one counts */
    skip_space(scan);
    if (scan->at >= scan->end || *scan->at != '[')
        return skip_value(scan, 1, &truthy);
    scan->at++;
    if (take(scan, ']'))
        return 1;
    do {
        skip_space(scan);
        if (scan->at < scan->end && *scan->at == '{') {
            if (!parse_response(scan, errors))
                return 0;
        } else if (!skip_value(scan, 2, &truthy)) {
            return 0;
        }
    } while (take(scan, ','));
    return take(scan, ']');
}

/* A reply object; 0 if the line is not one. Trailing bytes are ignored, as
 * by client.py's scanner. */
static int parse_reply(const char *line, size_t length, Reply *reply) {
    Scan scan = {(const unsigned char *)line, (const unsigned char *)line + length};
    Buf key = {0};
    int valid = 0, truthy;
    reply->rendered.len = reply->errors.len = 0;
    reply->more = 0;
    if (!take(&scan, '{'))
        return 0;
    if (take(&scan, '}'))
        return 1;
    do {
        key.len = 0;
        if (!parse_string(&scan, &key, NULL) || !take(&scan, ':'))
            goto done;
        skip_space(&scan);
        if (key_is(&key, "Rendered")) { /* shown only when it is a string */
            reply->rendered.len = 0;
            if (scan.at < scan.end && *scan.at == '"' ? !parse_string(&scan, &reply->rendered, NULL)
                                                       : !skip_value(&scan, 1, &truthy))
                goto done;
        } else if (key_is(&key, "More")) {
            if (!skip_value(&scan, 1, &reply->more))
                goto done;
        } else if (key_is(&key, "Resp")) {
            if (!parse_resp(&scan, &reply->errors))
                goto done;
        } else if (!skip_value(&scan, 1, &truthy)) {
            goto done;
        }
    } while (take(&scan, ','));
    valid = take(&scan, '}');
done:
    free(key.data);
    return valid;
}

/* -e ------------------------------------------------------------------------------ */

static int report_unexpected(const char *path, const char *line, size_t length) {
    /* the line as Python shows line[:80]: 80 code points, invalid bytes replaced */
    Buf message = {0};
    buf_str(&message, "unexpected reply from ");
    buf_str(&message, path);
    buf_str(&message, ": ");
    const unsigned char *at = (const unsigned char *)line, *end = at + length;
    for (int shown = 0; at < end && shown < 80; shown++) {
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
        int blank = 1;
        for (size_t i = 0; i < length && blank; i++)
            blank = received.data[i] != '\0' && strchr(" \t\n\r\v\f", received.data[i]) != NULL;
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
    Buf message = {0};
    buf_str(&message, "cannot run ");
    buf_str(&message, front_end.data);
    buf_str(&message, ": ");
    add_reason(&message, errno);
    return report(message.data);
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
    const char *base = DEFAULT_BASE, *namespace = "", *pipe_name = "";
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
        return hand_to_python(argv); /* minimega's quoting of any text is Python's */
    (void)attach; /* -pipe and -e come before it, as in minimega */
    signal(SIGPIPE, SIG_IGN); /* a stdout that goes away is an EPIPE: status 141 */
    signal(SIGINT, interrupted);
    if (pipe_name[0])
        return run_pipe(base, pipe_name);
    return run_execute(base, namespace, words, word_count);
}
