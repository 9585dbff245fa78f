// The common log workload through Octopus: N lines of about 100 bytes via swift-log's `Logger.info` into one file
// with the layout `%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m`, timed from the first call until every byte is
// written and the file closed (`shutdown` returned). Prints one line of key=value pairs for
// Benchmarks/run_log_benchmark.py, which runs it interleaved with the peers and verifies the files.
//
//   LogBenchmark [--mode plain|rotating|hourly] [--threads T] [--layout pattern|message|basic|json] [--metadata] [--direct] OUTFILE [N]
//   LogBenchmark floor [N]          swift-log alone, with a handler that does nothing
//   LogBenchmark archive FILE       gzips a copy of FILE as rotation does and prints MB/s
//
// Modes: `plain` one file; `rotating` the file appender with maxLogSize 10M, backups 5, compress; `hourly` a
// dateFile appender with the pattern yyyy-MM-dd-hh and a clock that moves one hour every 100,000 lines.
// `--layout basic` is log4js's default layout; `--metadata` gives the logger a request id (`request=r-12345`), as a
// server's request logger has, which `basic` prints after the message. `--direct` logs the same lines through the
// logger's direct call (`logger.direct.info`, past swift-log's event and message string) instead of `Logger.info`.

import Foundation
import Logging
import OctopusLog
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

@inline(__always) func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

var mode = "plain"
var threads = 1
var layoutName = "pattern"
var withMetadata = false
var direct = false
var positional: [String] = []
var argumentIterator = CommandLine.arguments.dropFirst().makeIterator()
while let argument = argumentIterator.next() {
    switch argument {
    case "--mode": mode = argumentIterator.next() ?? mode
    case "--threads": threads = max(1, Int(argumentIterator.next() ?? "") ?? 1)
    case "--layout": layoutName = argumentIterator.next() ?? layoutName
    case "--metadata": withMetadata = true
    case "--direct": direct = true
    default: positional.append(argument)
    }
}
guard let first = positional.first else {
    fail("usage: LogBenchmark [--mode plain|rotating|hourly] [--threads T] [--layout pattern|message|basic|json] [--metadata] [--direct] OUTFILE [N]")
}

if first == "archive" {
    guard positional.count > 1 else { fail("usage: LogBenchmark archive FILE") }
    let copy = positional[1] + ".bench-copy"
    try? FileManager.default.removeItem(atPath: copy)
    try? FileManager.default.removeItem(atPath: copy + ".gz")
    try FileManager.default.copyItem(atPath: positional[1], toPath: copy)
    let start = monotonicNanos()
    let bytes = try LogArchive.compress(copy)
    let seconds = Double(monotonicNanos() - start) / 1e9
    var st = stat()
    stat(copy + ".gz", &st)
    try? FileManager.default.removeItem(atPath: copy + ".gz")
    print(String(format: "impl=octopus-archiver bytes=%d secs=%.4f MB_per_s=%.1f ratio=%.3f", bytes, seconds, Double(bytes) / 1e6 / seconds, Double(st.st_size) / Double(bytes)))
    exit(0)
}

/// `floor`: swift-log with a handler that only touches the message — what any swift-log backend pays before it
/// does its own work.
struct FloorHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        if event.message.description.utf8.count == 0 { print("") }
    }
}
/// Read on every line: a flag, not a string compared each time (spdlog's loop has nothing of the kind).
let movesTheHour = mode == "hourly"
let isFloor = first == "floor"
let path = isFloor ? "/dev/null" : first
let count = positional.count > 1 ? Int(positional[1]) ?? 1_000_000 : 1_000_000
let layout: LayoutConfiguration =
    switch layoutName {
    case "message": .messagePassThrough
    case "basic": .basic(timeZone: .local)
    case "json": .json(timeZone: .local)
    default: .pattern("%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m", tokens: [:], timeZone: .local)
    }
if !isFloor { try? FileManager.default.removeItem(atPath: path) }

/// For `hourly`: the hour the clock shows, moved on every 100,000 lines.
let hour = Atomic<Int>(0)
let start2026 = LogTimestamp(seconds: 1_795_219_200)  // 2026-11-21T00:00:00Z
let clock: LogClock
let kind: AppenderConfiguration.Kind
switch mode {
case "plain", "floor":
    clock = .system
    kind = .file(FileAppenderOptions(filename: path))
case "rotating":
    clock = .system
    kind = .file(FileAppenderOptions(filename: path, maxLogSize: 10 << 20, backups: 5, compress: true))
case "hourly":
    clock = .custom {
        let now = LogTimestamp.now()
        return LogTimestamp(seconds: start2026.seconds + Int64(hour.load(ordering: .relaxed)) * 3600 + now.seconds % 60, nanoseconds: now.nanoseconds)
    }
    kind = .dateFile(DateFileAppenderOptions(filename: path, pattern: "yyyy-MM-dd-hh", numBackups: 1000, timeZone: .utc))
default:
    fail("unknown mode \(mode)")
}

let configuration = LogConfiguration(
    appenders: ["file": AppenderConfiguration(kind, layout: layout)],
    categories: ["default": CategoryConfiguration(appenders: ["file"], level: .info)]
)
let logging = try LogSystem(configuration, clock: clock)
// Bootstrapped, as an application runs it: `Logger(label:)` gets Octopus's handler.
if !isFloor { logging.bootstrap() }
var logger = isFloor ? Logger(label: "app") { _ in FloorHandler() } : Logger(label: "app")
if withMetadata { logger[metadataKey: "request"] = "r-12345" }
let finalLogger = logger
let directLogger = logger.direct
let logsDirectly = direct

// One call in 64 is timed on its own for the latency distribution (timing every call would distort the total).
let sampleEvery = 64
let perThread = count / threads
/// Latency samples from every thread.
final class Samples: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [UInt64] = []
    func add(_ more: [UInt64]) {
        lock.lock()
        values += more
        lock.unlock()
    }
    var sorted: [UInt64] {
        lock.lock()
        defer { lock.unlock() }
        return values.sorted()
    }
}
let samples = Samples()

/// Logs lines `first..<first+count`, timing one call in `sampleEvery` on its own.
@Sendable func logLines(_ firstLine: Int, _ count: Int) -> [UInt64] {
    var local: [UInt64] = []
    local.reserveCapacity(count / sampleEvery + 1)
    for k in 0..<count {
        let i = firstLine + k
        if movesTheHour, i % 100_000 == 0, i > 0 { hour.add(1, ordering: .relaxed) }
        if logsDirectly {
            if k % sampleEvery == 0 {
                let t0 = monotonicNanos()
                directLogger.info("user 12345 logged in from 10.0.0.1 reqid=abcdef0123 n=\(i)")
                local.append(monotonicNanos() - t0)
            } else {
                directLogger.info("user 12345 logged in from 10.0.0.1 reqid=abcdef0123 n=\(i)")
            }
        } else if k % sampleEvery == 0 {
            let t0 = monotonicNanos()
            finalLogger.info("user 12345 logged in from 10.0.0.1 reqid=abcdef0123 n=\(i)")
            local.append(monotonicNanos() - t0)
        } else {
            finalLogger.info("user 12345 logged in from 10.0.0.1 reqid=abcdef0123 n=\(i)")
        }
    }
    return local
}

let start = monotonicNanos()
if threads == 1 {
    samples.add(logLines(0, count))
} else {
    let group = DispatchGroup()
    for t in 0..<threads {
        group.enter()
        Thread.detachNewThread {
            samples.add(logLines(t * perThread, perThread))
            group.leave()
        }
    }
    group.wait()
}
let callsDone = monotonicNanos()
logging.flush()  // every line written
let written = monotonicNanos()
try await logging.shutdown()  // files closed; the last rolls named, compressed and retention applied
let end = monotonicNanos()

var usage = rusage()
getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
// Rolled files are compressed (and some removed by retention): only the plain mode's file size is the bytes written.
let bytes = mode == "plain" ? ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) : 0
let all = samples.sorted
func percentile(_ p: Double) -> UInt64 { all.isEmpty ? 0 : all[min(all.count - 1, Int(Double(all.count) * p))] }
// Timed until every line is written; the close and the finishing of the last rolls (compressing them in the
// background) are in total_secs.
let seconds = Double(written - start) / 1e9
let counters = logging.counters(for: "file") ?? AppenderCounters()
print(
    String(
        format: "impl=\(isFloor ? "swift-log-floor" : "octopus-" + mode) lines=%d threads=%d secs=%.4f total_secs=%.4f call_secs=%.4f lines_per_s=%.0f MB_per_s=%.1f rss_mb=%.1f p50_ns=%llu p99_ns=%llu batches=%d drops=%d",
        threads * perThread, threads, seconds, Double(end - start) / 1e9, Double(callsDone - start) / 1e9, Double(threads * perThread) / seconds,
        Double(bytes) / 1e6 / seconds, Double(usage.ru_maxrss) / 1024, percentile(0.5), percentile(0.99), counters.batches,
        counters.drops
    ) + " rolls=\(counters.rolls) archived=\(counters.archived)")
