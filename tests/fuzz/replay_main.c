/* A main() for the fuzz targets where libFuzzer is not available (gcc, no clang): replays each
 * file given, or each regular file of each directory given, through LLVMFuzzerTestOneInput once,
 * in a buffer of the file's exact size (so a sanitizer sees any read past it). Exits 0 after the
 * last input; a failing invariant (abort) or a sanitizer report ends the run, and the name of the
 * input that caused it is printed then (a sanitizer death callback and a SIGABRT handler).
 * Owns nothing past one input at a time; the only global is the name of the current input. */
#include "tests/fuzz/fuzz_common.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_FILE_MAX (16 << 20) /* larger inputs are refused, not replayed */

static const char *current_input; /* for the death reports below */

/* From the sanitizer runtime; weak, so that a build without sanitizers links too. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void report_input(void)
{
    static const char msg[] = "\nreplay: the input that failed: ";
    if (!current_input)
        return;
    /* async-signal-safe */
    (void)!write(2, msg, sizeof(msg) - 1);
    (void)!write(2, current_input, strlen(current_input));
    (void)!write(2, "\n", 1);
}

static void on_abort(int sig)
{
    report_input();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > REPLAY_FILE_MAX) {
        fprintf(stderr, "%s: cannot stat or larger than %d bytes\n", path, REPLAY_FILE_MAX);
        fclose(f);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *data = malloc(n ? n : 1);
    if (!data || fread(data, 1, n, f) != n) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(data);
        fclose(f);
        return -1;
    }
    fclose(f);
    current_input = path;
    LLVMFuzzerTestOneInput(data, n);
    current_input = NULL;
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    int ran = 0, failed = 0;
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(report_input);
    signal(SIGABRT, on_abort);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            failed++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i]) == 0)
                ran++;
            else
                failed++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            perror(argv[i]);
            failed++;
            continue;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            if (replay_file(path) == 0)
                ran++;
            else
                failed++;
        }
        closedir(d);
    }
    fprintf(stderr, "replayed %d inputs%s\n", ran, failed ? ", some unreadable" : "");
    return failed ? 1 : 0;
}
