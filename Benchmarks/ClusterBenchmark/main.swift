// The process model's figures.
//
//   ClusterBenchmark startup OCTOPUS ROUNDS     start-to-ready of `OCTOPUS start --workers 4` (master + agent + 4
//                                               workers), beside one plain process of the same binary (`--help`)
//   ClusterBenchmark messenger MESSAGES         messenger worker → agent → worker: latency one at a time, throughput
//                                               with 64 in flight, and `call` (request/response) the same two ways
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
    private let state = Mutex<[Int: CheckedContinuation<Void, Never>]>([:])
    private let early = Mutex<Set<Int>>([])

    func wait(_ n: Int) async {
        await withCheckedContinuation { continuation in
            let already = early.withLock { $0.remove(n) != nil }
            if already {
                continuation.resume()
            } else {
                state.withLock { $0[n] = continuation }
                // The pong may have come between the two locks.
                if early.withLock({ $0.remove(n) != nil }) { state.withLock { $0.removeValue(forKey: n) }?.resume() }
            }
        }
    }

    func arrived(_ n: Int) {
        if let waiter = state.withLock({ $0.removeValue(forKey: n) }) {
            waiter.resume()
        } else {
            early.withLock { _ = $0.insert(n) }
        }
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
        app = try OctopusApplication(configDirectory: "config", arguments: [arguments[0], "start"])
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
    await app.run()
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

// MARK: - Main

switch arguments.dropFirst().first {
case "startup":
    guard arguments.count >= 3 else { fail("usage: ClusterBenchmark startup OCTOPUS [ROUNDS]") }
    await startup(octopus: arguments[2], rounds: arguments.count > 3 ? Int(arguments[3]) ?? 10 : 10)
case "messenger":
    await messengerDriver(messages: arguments.count > 2 ? Int(arguments[2]) ?? 100_000 : 100_000)
case "serve", "start":
    // `serve` runs the benchmark's cluster; its children are started again with the master's command line.
    await serve()
default:
    fail("usage: ClusterBenchmark startup OCTOPUS [ROUNDS] | messenger [MESSAGES]")
}
