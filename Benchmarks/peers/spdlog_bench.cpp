// spdlog (1.10, Debian's libspdlog-dev) on the common log workload, with the pattern closest to Octopus's
// `%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m`. Timed from the first call until the file is closed.
//   spdlog_bench basic|rotating|daily OUTFILE N [THREADS]
//   basic: the synchronous thread-safe file sink (basic_file_sink_mt); rotating: 10 MiB x 5 files (spdlog does not
//   compress); daily: the daily file sink (it rolls at a wall-clock time, so within one run it writes one file).
//   THREADS (default 1) threads log N/THREADS lines each, thread t the lines n = t*N/THREADS ...
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/daily_file_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char **argv) {
    if (argc < 4) { std::fprintf(stderr, "usage: spdlog_bench basic|rotating|daily OUTFILE N [THREADS]\n"); return 2; }
    std::string mode = argv[1];
    std::string path = argv[2];
    long n = std::atol(argv[3]);
    long threads = argc > 4 ? std::atol(argv[4]) : 1;
    if (threads < 1) threads = 1;
    long per = n / threads;
    std::shared_ptr<spdlog::logger> logger;
    if (mode == "basic") logger = spdlog::basic_logger_mt("app", path, true);
    else if (mode == "rotating") logger = spdlog::rotating_logger_mt("app", path, 10 * 1024 * 1024, 5);
    else if (mode == "daily") logger = spdlog::daily_logger_mt("app", path, 0, 0);
    else { std::fprintf(stderr, "unknown mode\n"); return 2; }
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e [%l] %n - %v");
    auto start = std::chrono::steady_clock::now();
    if (threads == 1) {
        for (long i = 0; i < n; i++) logger->info("user 12345 logged in from 10.0.0.1 reqid=abcdef0123 n={}", i);
    } else {
        std::vector<std::thread> workers;
        for (long t = 0; t < threads; t++) {
            workers.emplace_back([&, t] {
                for (long i = t * per; i < (t + 1) * per; i++) logger->info("user 12345 logged in from 10.0.0.1 reqid=abcdef0123 n={}", i);
            });
        }
        for (auto &worker : workers) worker.join();
        n = per * threads;
    }
    logger->flush();
    logger.reset();
    spdlog::shutdown();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("impl=spdlog-%s lines=%ld threads=%ld secs=%.4f lines_per_s=%.0f\n", mode.c_str(), n, threads, secs, n / secs);
    return 0;
}
