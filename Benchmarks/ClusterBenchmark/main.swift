// The process model's figures.
//
//   ClusterBenchmark startup OCTOPUS ROUNDS     start-to-ready of `OCTOPUS start --workers 4` (master + agent + 4
//                                               workers), beside one plain process of the same binary (`--help`)
//   ClusterBenchmark messenger MESSAGES         messenger worker → agent → worker: latency one at a time, throughput
//                                               with 64 in flight, and `call` (request/response) the same two ways
//   ClusterBenchmark logs ROUNDS LINES          LINES lines into one file from 1 process, and from 2 workers (LINES/2
//                                               each), plain and rolled (10M x 20, gzip, the agent rolling), interleaved
//   ClusterBenchmark dispatch TICKS             a tick handed out by the scheduler → its run begun: in one process, and
//                                               from the agent to a worker
//   ClusterBenchmark client CALLS VALUES KILLS  the cluster client: invoke through a follower, in the leader's process
//                                               and as a raw RPC call; fan-out to 1, 4, 16 subscribers; failover
//                                               (SharedClient.swift)
//
// Run through Benchmarks/run-cluster-benchmark.sh (release build).
import Foundation
import Octopus
import OctopusSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("ClusterBenchmark: \(message)\n".utf8))
    exit(2)
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))]
}

func median(_ values: [Double]) -> Double { percentile(values.sorted(), 0.5) }

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

func scratchDirectory(workers: Int) -> String {
    let path = "/tmp/octo-cluster-bench-\(getpid())"
    try? FileManager.default.removeItem(atPath: path)
    try? FileManager.default.createDirectory(atPath: path + "/config", withIntermediateDirectories: true)
    let config = """
        log:
          appenders:
            file: { type: file, filename: logs/app.log, layout: { type: pattern, pattern: "%d{hh:mm:ss.SSS} [%p] %c %z - %m%X" } }
          categories:
            default: { appenders: [file], level: INFO }
        cluster:
          workers: \(workers)
        """
    try? config.write(toFile: path + "/config/config.default.yaml", atomically: true, encoding: .utf8)
    return path
}

// MARK: - Start-up

func startup(octopus: String, rounds: Int) async {
    let directory = scratchDirectory(workers: 4)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
    var plain: [Double] = []
    var cluster: [Double] = []
    var stops: [Double] = []
    for round in 0..<rounds {
        // One plain process of the same binary: exec, the Swift runtime, argument parsing, exit.
        let began = ContinuousClock.now
        guard let help = try? Spawner.spawn(
            ProcessSpec(executable: octopus, arguments: [octopus, "--help"], environment: ProcessInfo.processInfo.environment,
                        descriptors: [-1, devNull, devNull], directory: directory))
        else { fail("cannot start \(octopus)") }
        _ = await help.exit.value
        plain.append(milliseconds(ContinuousClock.now - began))

        // The cluster: from the exec of the master until it says every process is ready (the daemon's readiness pipe).
        var pipe: [Int32] = [0, 0]
        guard Glibc.pipe(&pipe) == 0 else { fail("pipe") }
        var environment = ProcessInfo.processInfo.environment
        environment["OCTOPUS_DAEMON_NOTIFY_FD"] = "3"
        let started = ContinuousClock.now
        guard let master = try? Spawner.spawn(
            ProcessSpec(executable: octopus, arguments: [octopus, "start", "--workers", "4"], environment: environment,
                        descriptors: [-1, devNull, devNull, pipe[1]], directory: directory))
        else { fail("cannot start \(octopus)") }
        close(pipe[1])
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { read(pipe[0], $0.baseAddress, $0.count) }
        let ready = ContinuousClock.now
        close(pipe[0])
        let said = String(decoding: buffer[0..<max(0, n)], as: UTF8.self)
        guard said.hasPrefix("ready") else { fail("the cluster did not start: \(said)") }
        cluster.append(milliseconds(ready - started))
        master.signal(SIGTERM)
        let status = await master.exit.value
        stops.append(milliseconds(ContinuousClock.now - ready))
        guard status == .exited(0) else { fail("the master ended with \(status)") }
        print(String(format: "round %d: plain %.1f ms, cluster ready %.1f ms, stopped %.1f ms", round + 1, plain.last!, cluster.last!, stops.last!))
    }
    close(devNull)
    let p = median(plain)
    let c = median(cluster)
    print(String(format: "plain_start_ms=%.1f cluster_ready_ms=%.1f cluster_min_ms=%.1f cluster_max_ms=%.1f stop_ms=%.1f ratio=%.2f",
                 p, c, cluster.min() ?? 0, cluster.max() ?? 0, median(stops), c / p))
}

// MARK: - Messenger

struct Ping: Codable, Sendable {
    var n: Int
}

struct EchoCall: RPCAction {
    typealias Input = Int
    typealias Output = Int
    static let name = "bench.echo"
}

/// Pongs awaited by sequence number.
final class Waiters: Sendable {
    /// One lock for both: with two, a pong could be found neither waited for nor early (a lost wake-up).
    private struct State {
        var waiting: [Int: CheckedContinuation<Void, Never>] = [:]
        var early: Set<Int> = []
    }
    private let state = Mutex(State())

    func wait(_ n: Int) async {
        await withCheckedContinuation { continuation in
            let already = state.withLock { state in
                if state.early.remove(n) != nil { return true }
                state.waiting[n] = continuation
                return false
            }
            if already { continuation.resume() }
        }
    }

    func arrived(_ n: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiting.removeValue(forKey: n) else {
                state.early.insert(n)
                return nil
            }
            return waiter
        }
        waiter?.resume()
    }
}

func messengerDriver(messages: Int) async {
    let directory = scratchDirectory(workers: 2)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let me = URL(fileURLWithPath: arguments[0]).path
    var environment = ProcessInfo.processInfo.environment
    environment["BENCH_MESSAGES"] = "\(messages)"
    guard let master = try? Spawner.spawn(
        ProcessSpec(executable: me, arguments: [me, "serve"], environment: environment, directory: directory))
    else { fail("cannot start the benchmark cluster") }
    let status = await master.exit.value
    let result = (try? String(contentsOfFile: directory + "/result.txt", encoding: .utf8)) ?? ""
    guard status == .exited(0), !result.isEmpty else {
        fail("the benchmark cluster ended with \(status): \((try? String(contentsOfFile: directory + "/logs/app.log", encoding: .utf8)) ?? "")")
    }
    print(result, terminator: "")
}

/// The cluster side: the agent answers, worker 1 measures and then stops the cluster.
func serve() async {
    let messages = ProcessInfo.processInfo.environment["BENCH_MESSAGES"].flatMap(Int.init) ?? 100_000
    let app: OctopusApplication
    do {
        // The children are started with this command line again, and so run this mode.
        app = try OctopusApplication(configDirectory: "config")
    } catch {
        fail("\(error)")
    }
    let waiters = Waiters()
    let messenger = app.messenger
    messenger.on("ping", as: Ping.self) { ping, sender in
        _ = try? messenger.sendTo(pid: sender.pid, "pong", ping)
    }
    messenger.on("pong", as: Ping.self) { ping, _ in waiters.arrived(ping.n) }
    messenger.handle(EchoCall.self) { $0 }
    app.serverDidReady { context in
        guard context.workerID == 1 else { return }
        Task.detached {
            var report = "from the global pool:\n" + (await measure(messenger, waiters, messages: messages))
            report += "from a task on the messenger's executor:\n"
            report += await withTaskExecutorPreference(messenger.executor) { await measure(messenger, waiters, messages: messages, base: 10_000_000) }
            try? report.write(toFile: "result.txt", atomically: true, encoding: .utf8)
            kill(getppid(), SIGTERM)
        }
    }
    exit(await app.start())
}

func measure(_ messenger: Messenger, _ waiters: Waiters, messages: Int, base: Int = 0) async -> String {
    var report = ""
    var next = base
    // One at a time: worker 1 → agent → worker 1, a round trip through the master both ways.
    var latencies: [Double] = []
    let single = max(1000, messages / 20)
    for _ in 0..<single {
        next += 1
        let n = next
        let began = ContinuousClock.now
        _ = try? messenger.sendToAgent("ping", Ping(n: n))
        await waiters.wait(n)
        latencies.append(milliseconds(ContinuousClock.now - began) * 1000)
    }
    latencies.sort()
    report += String(format: "messenger_one_at_a_time round_trips=%d p50_us=%.0f p99_us=%.0f per_s=%.0f\n", single,
                     percentile(latencies, 0.5), percentile(latencies, 0.99), 1e6 / (latencies.reduce(0, +) / Double(single)))

    // 64 in flight.
    let began = ContinuousClock.now
    let first = next + 1
    next += messages
    await withTaskGroup(of: Void.self) { group in
        for lane in 0..<64 {
            group.addTask {
                var n = first + lane
                while n < first + messages {
                    _ = try? messenger.sendToAgent("ping", Ping(n: n))
                    await waiters.wait(n)
                    n += 64
                }
            }
        }
    }
    let elapsed = milliseconds(ContinuousClock.now - began) / 1000
    report += String(format: "messenger_64_in_flight round_trips=%d per_s=%.0f\n", messages, Double(messages) / elapsed)

    // call: request/response to the agent (through the master).
    var calls: [Double] = []
    for i in 0..<single {
        let start = ContinuousClock.now
        _ = try? await messenger.call(EchoCall.self, i, to: .agent)
        calls.append(milliseconds(ContinuousClock.now - start) * 1000)
    }
    calls.sort()
    report += String(format: "call_one_at_a_time calls=%d p50_us=%.0f p99_us=%.0f per_s=%.0f\n", single,
                     percentile(calls, 0.5), percentile(calls, 0.99), 1e6 / (calls.reduce(0, +) / Double(single)))
    let callsBegan = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
        for lane in 0..<64 {
            group.addTask {
                var i = lane
                while i < messages {
                    _ = try? await messenger.call(EchoCall.self, i, to: .agent)
                    i += 64
                }
            }
        }
    }
    let callsElapsed = milliseconds(ContinuousClock.now - callsBegan) / 1000
    report += String(format: "call_64_in_flight calls=%d per_s=%.0f\n", messages, Double(messages) / callsElapsed)
    return report
}

// MARK: - Many processes, one file

let logPattern = "%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m"

func logConfiguration(_ mode: String, file: String) -> String {
    // Enough backups that every line can be counted afterwards.
    let rotation = mode == "rotating" ? ", maxLogSize: 10M, backups: 20, compress: true" : ""
    return """
        log:
          appenders:
            file: { type: file, filename: logs/app.log, layout: { type: pattern, pattern: "%d [%p] %c %z - %m%X" } }
            bench: { type: file, filename: \(file)\(rotation), layout: { type: pattern, pattern: "\(logPattern)" } }
          categories:
            default: { appenders: [file], level: INFO }
            app: { appenders: [bench], level: INFO, inherit: false }
        cluster:
          workers: 2
        """
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Logs `count` lines of the common workload through `logger`; returns when the calls have returned.
func logLines(_ logger: Logger, from first: Int, count: Int) {
    for i in first..<(first + count) { logger.info("user 12345 logged in from 10.0.0.1 reqid=abcdef0123 n=\(i)") }
}

/// Lines in the bench file and its rolled archives.
func countLines(in directory: String) -> Int {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/logs")) ?? []
    var total = 0
    for name in names where name.hasPrefix("bench.log") {
        let path = directory + "/logs/" + name
        let bytes = name.hasSuffix(".gz") ? ((try? LogArchive.decompress(path)) ?? []) : Array(FileManager.default.contents(atPath: path) ?? Data())
        total += bytes.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
    }
    return total
}

/// One process: a LogSystem, `lines` lines, timed until every one is written (flush).
func singleProcess(mode: String, lines: Int) throws -> Double {
    let directory = scratchDirectory(workers: 1)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let configuration = try LogConfiguration(yaml: logConfiguration(mode, file: directory + "/logs/bench.log"))
    let logging = try LogSystem(configuration)
    let logger = logging.logger(label: "app")
    let start = monotonicSeconds()
    logLines(logger, from: 0, count: lines)
    logging.flush()
    let seconds = monotonicSeconds() - start
    logging.shutdownNow()
    let written = countLines(in: directory)
    guard written == lines else { fail("single process: \(written) of \(lines) lines in the files") }
    return seconds
}

/// Two workers of a cluster, `lines / 2` each into the same file, beginning together; timed from that moment until
/// the last worker's last line is written.
func twoWorkers(mode: String, lines: Int) async throws -> Double {
    let directory = scratchDirectory(workers: 2)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try logConfiguration(mode, file: "logs/bench.log").write(toFile: directory + "/config/config.default.yaml", atomically: true, encoding: .utf8)
    let me = URL(fileURLWithPath: arguments[0]).path
    var environment = ProcessInfo.processInfo.environment
    environment["BENCH_LINES"] = "\(lines / 2)"
    guard let master = try? Spawner.spawn(
        ProcessSpec(executable: me, arguments: [me, "serve-logs"], environment: environment, directory: directory))
    else { fail("cannot start the benchmark cluster") }
    // Both workers ready: they begin together, 50 ms from now (CLOCK_MONOTONIC is one clock for every process).
    let ready = directory + "/ready.txt"
    while ((try? String(contentsOfFile: ready, encoding: .utf8)) ?? "").split(separator: "\n").count < 2 {
        try await Task.sleep(for: .milliseconds(5))
    }
    let go = monotonicSeconds() + 0.05
    try String(format: "%.6f", go).write(toFile: directory + "/go.tmp", atomically: false, encoding: .utf8)
    rename(directory + "/go.tmp", directory + "/go.txt")
    let times = directory + "/times.txt"
    let end = ContinuousClock.now + .seconds(600)
    while ContinuousClock.now < end {
        let done = ((try? String(contentsOfFile: times, encoding: .utf8)) ?? "").split(separator: "\n")
        if done.count == 2 { break }
        try await Task.sleep(for: .milliseconds(10))
    }
    master.signal(SIGTERM)
    guard await master.exit.value == .exited(0) else { fail("the benchmark cluster did not stop cleanly") }
    let spans = ((try? String(contentsOfFile: times, encoding: .utf8)) ?? "").split(separator: "\n").map { line in
        line.split(separator: " ").compactMap { Double($0) }
    }
    guard spans.count == 2, spans.allSatisfy({ $0.count == 2 }) else { fail("the workers did not say when they were done") }
    let written = countLines(in: directory)
    guard written == lines / 2 * 2 else { fail("two workers: \(written) of \(lines) lines in the files") }
    return spans.map { $0[1] }.max()! - go
}

/// The cluster side of `logs`: each worker logs its share once every process is ready.
func serveLogs() async {
    let lines = ProcessInfo.processInfo.environment["BENCH_LINES"].flatMap(Int.init) ?? 500_000
    let app: OctopusApplication
    do {
        // The children are started with this command line again, and so run this mode.
        app = try OctopusApplication(configDirectory: "config")
    } catch {
        fail("\(error)")
    }
    app.serverDidReady { context in
        guard let id = context.workerID else { return }
        Task.detached {
            let logger = context.logging.logger(label: "app")
            let fd = open("ready.txt", O_WRONLY | O_APPEND | O_CREAT, 0o644)
            _ = Array("\(id)\n".utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            var go: Double?
            while go == nil {
                go = (try? String(contentsOfFile: "go.txt", encoding: .utf8)).flatMap(Double.init)
                if go == nil { usleep(500) }
            }
            while monotonicSeconds() < go! {}
            let start = monotonicSeconds()
            logLines(logger, from: (id - 1) * lines, count: lines)
            context.logging.flush()
            let finished = monotonicSeconds()
            let times = open("times.txt", O_WRONLY | O_APPEND | O_CREAT, 0o644)
            let text = Array(String(format: "%.6f %.6f\n", start, finished).utf8)
            _ = text.withUnsafeBytes { write(times, $0.baseAddress, $0.count) }
            close(times)
        }
    }
    exit(await app.start())
}

func logs(rounds: Int, lines: Int) async throws {
    for mode in ["plain", "rotating"] {
        var single: [Double] = []
        var cluster: [Double] = []
        var ratios: [Double] = []
        for round in 1...rounds {
            let one = try singleProcess(mode: mode, lines: lines)
            let two = try await twoWorkers(mode: mode, lines: lines)
            single.append(Double(lines) / one)
            cluster.append(Double(lines) / two)
            ratios.append(one / two)
            print(String(format: "%@ round %d: 1 process %.2f M lines/s, 2 workers %.2f M lines/s (%.2fx)", mode, round, single.last! / 1e6, cluster.last! / 1e6, ratios.last!))
        }
        print(String(format: "logs_%@ single_lines_per_s=%.0f two_workers_lines_per_s=%.0f ratio=%.2f", mode, median(single), median(cluster), median(ratios)))
    }
}

// MARK: - Dispatch overhead

/// Microseconds from a tick handed out to its run begun, one sample per tick.
final class Samples: Sendable {
    private let values = Mutex<[Double]>([])
    func add(_ value: Double) { values.withLock { $0.append(value) } }
    var all: [Double] { values.withLock { $0 } }
}

func report(_ name: String, _ samples: [Double]) {
    let sorted = samples.sorted()
    print(String(format: "%@ ticks=%d p50_us=%.0f p99_us=%.0f max_us=%.0f", name, sorted.count, percentile(sorted, 0.5), percentile(sorted, 0.99), sorted.last ?? 0))
}

func dispatchInProcess(ticks: Int) async throws {
    let samples = Samples()
    let scheduler = Scheduler(environment: "bench", log: Logger(label: "schedule") { _ in SwiftLogNoOpLogHandler() })
    try scheduler.register(ScheduledTask(name: "probe", schedule: Schedule(interval: "20ms")) { context in
        samples.add(Date().timeIntervalSince(context.tick.actualTime) * 1e6)
    })
    let running = Task { try await scheduler.run() }
    while samples.all.count < ticks { try await Task.sleep(for: .milliseconds(50)) }
    scheduler.stop()
    _ = try? await running.value
    report("dispatch_in_process", Array(samples.all.prefix(ticks)))
}

func dispatchAcrossProcesses(ticks: Int) async {
    let directory = scratchDirectory(workers: 2)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let me = URL(fileURLWithPath: arguments[0]).path
    guard let master = try? Spawner.spawn(
        ProcessSpec(executable: me, arguments: [me, "serve-dispatch"], environment: ProcessInfo.processInfo.environment, directory: directory))
    else { fail("cannot start the benchmark cluster") }
    let file = directory + "/latency.txt"
    while ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n").count < ticks {
        try? await Task.sleep(for: .milliseconds(50))
    }
    master.signal(SIGTERM)
    _ = await master.exit.value
    let samples = ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Double($0) }
    report("dispatch_agent_to_worker", Array(samples.prefix(ticks)))
}

/// The cluster side of `dispatch`: a task every 20 ms whose run writes how long after it was handed out it began.
func serveDispatch() async {
    let app: OctopusApplication
    do {
        // The children are started with this command line again, and so run this mode.
        app = try OctopusApplication(configDirectory: "config")
    } catch {
        fail("\(error)")
    }
    app.schedules.register(ScheduledTask(name: "probe", schedule: Schedule(interval: "20ms", type: .worker)) { context in
        let micros = Date().timeIntervalSince(context.tick.actualTime) * 1e6
        let fd = open("latency.txt", O_WRONLY | O_APPEND | O_CREAT, 0o644)
        let text = Array(String(format: "%.1f\n", micros).utf8)
        _ = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    })
    exit(await app.start())
}

// MARK: - Main

switch arguments.dropFirst().first {
case "startup":
    guard arguments.count >= 3 else { fail("usage: ClusterBenchmark startup OCTOPUS [ROUNDS]") }
    await startup(octopus: arguments[2], rounds: arguments.count > 3 ? Int(arguments[3]) ?? 10 : 10)
case "messenger":
    await messengerDriver(messages: arguments.count > 2 ? Int(arguments[2]) ?? 100_000 : 100_000)
case "serve":
    await serve()
case "logs":
    try await logs(rounds: arguments.count > 2 ? Int(arguments[2]) ?? 5 : 5, lines: arguments.count > 3 ? Int(arguments[3]) ?? 1_000_000 : 1_000_000)
case "serve-logs":
    await serveLogs()
case "dispatch":
    let ticks = arguments.count > 2 ? Int(arguments[2]) ?? 500 : 500
    try await dispatchInProcess(ticks: ticks)
    await dispatchAcrossProcesses(ticks: ticks)
case "serve-dispatch":
    await serveDispatch()
case "client":
    func number(_ index: Int, _ otherwise: Int) -> Int { arguments.count > index ? Int(arguments[index]) ?? otherwise : otherwise }
    await sharedClientBenchmark(calls: number(2, 20_000), values: number(3, 20_000), kills: number(4, 20))
case "client-member":
    await clientMember(Array(arguments.dropFirst(2)))
default:
    fail("usage: ClusterBenchmark startup OCTOPUS [ROUNDS] | messenger [MESSAGES] | logs [ROUNDS] [LINES] | dispatch [TICKS] | client [CALLS] [VALUES] [KILLS]")
}
