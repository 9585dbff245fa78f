// spdlog's basic (synchronous, thread-safe) file sink on the common log workload, with the pattern closest to
// Octopus's `%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m`. Timed from the first call until the file is closed.
//   spdlog_basic OUTFILE N
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

int main(int argc, char **argv) {
    if (argc < 3) { std::fprintf(stderr, "usage: spdlog_basic OUTFILE N\n"); return 2; }
    long n = std::atol(argv[2]);
    auto logger = spdlog::basic_logger_mt("app", argv[1], true);
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e [%l] %n - %v");
    auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < n; i++) logger->info("user 12345 logged in from 10.0.0.1 reqid=abcdef0123 n={}", i);
    logger->flush();
    logger.reset();
    spdlog::shutdown();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("impl=spdlog-basic lines=%ld secs=%.4f lines_per_s=%.0f\n", n, secs, n / secs);
    return 0;
}
