// The common log workload through Octopus: N lines of about 100 bytes via swift-log's `Logger.info` into one file
// with the layout `%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m`, timed from the first call until every byte is
// written and the file closed (`shutdown` returned). Prints one line of key=value pairs for
// Benchmarks/run-log-benchmark.sh, which runs it interleaved with the peers and verifies the file.
//
//   LogBenchmark OUTFILE [N] [THREADS]

import Foundation
import Logging
import OctopusLog

#if canImport(Glibc)
import Glibc
#endif

@inline(__always) func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: LogBenchmark OUTFILE [N] [THREADS]\n".utf8))
    exit(2)
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
let isFloor = arguments[1] == "floor"
let path = isFloor ? "/dev/null" : arguments[1]
let count = arguments.count > 2 ? Int(arguments[2]) ?? 1_000_000 : 1_000_000
let threads = max(1, arguments.count > 3 ? Int(arguments[3]) ?? 1 : 1)
// An optional fourth argument swaps the layout, to see what rendering costs: `message` (the message alone).
let layout: LayoutConfiguration =
    arguments.count > 4 && arguments[4] == "message"
    ? .messagePassThrough : .pattern("%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m", tokens: [:], timeZone: .local)
if !isFloor { try? FileManager.default.removeItem(atPath: path) }

let configuration = LogConfiguration(
    appenders: [
        "file": AppenderConfiguration(
            .file(FileAppenderOptions(filename: path)),
            layout: layout
        )
    ],
    categories: ["default": CategoryConfiguration(appenders: ["file"], level: .info)]
)
let logging = try LogSystem(configuration)
let logger = isFloor ? Logger(label: "app") { _ in FloorHandler() } : logging.logger(label: "app")

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
@Sendable func logLines(_ first: Int, _ count: Int) -> [UInt64] {
    var local: [UInt64] = []
    local.reserveCapacity(count / sampleEvery + 1)
    for k in 0..<count {
        let i = first + k
        if k % sampleEvery == 0 {
            let t0 = monotonicNanos()
            logger.info("user 12345 logged in from 10.0.0.1 reqid=abcdef0123 n=\(i)")
            local.append(monotonicNanos() - t0)
        } else {
            logger.info("user 12345 logged in from 10.0.0.1 reqid=abcdef0123 n=\(i)")
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
try await logging.shutdown()
let end = monotonicNanos()

var usage = rusage()
getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
let attributes = try FileManager.default.attributesOfItem(atPath: path)
let bytes = (attributes[.size] as? Int) ?? 0
let all = samples.sorted
func percentile(_ p: Double) -> UInt64 { all.isEmpty ? 0 : all[min(all.count - 1, Int(Double(all.count) * p))] }
let seconds = Double(end - start) / 1e9
let counters = logging.counters(for: "file") ?? AppenderCounters()
print(
    String(
        format: "impl=\(isFloor ? "swift-log-floor" : "octopus") lines=%d threads=%d secs=%.4f call_secs=%.4f lines_per_s=%.0f MB_per_s=%.1f rss_mb=%.1f p50_ns=%llu p99_ns=%llu batches=%d drops=%d",
        threads * perThread, threads, seconds, Double(callsDone - start) / 1e9, Double(threads * perThread) / seconds,
        Double(bytes) / 1e6 / seconds, Double(usage.ru_maxrss) / 1024, percentile(0.5), percentile(0.99), counters.batches,
        counters.drops
    ))
