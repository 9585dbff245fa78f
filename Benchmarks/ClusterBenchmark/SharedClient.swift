// The cluster client's figures (`ClusterBenchmark client CALLS VALUES KILLS`), free mode, every process a real one:
//
//   invoke     a typed call (Int → Int) one at a time and 64 in flight: through a follower to the leader's real
//              client (the hop), in the leader's own process (single mode: the same code without the socket), and as
//              a plain RPC call branch → master between the same two processes (the RPC core's raw figure)
//   fan-out    VALUES values published through the client to 1, 4 and 16 subscriber processes: values/s and delivery
//              latency (publish → a subscriber has it; CLOCK_MONOTONIC is one clock for every process)
//   failover   the leader SIGKILLed KILLS times among 3 members whose real client ticks every millisecond: the time
//              from the kill to the first tick of the new leader in the slowest survivor
//
// The members are this binary again: `ClusterBenchmark client-member DIRECTORY ROLE …`.
import Foundation
import Octopus
import OctopusSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct BenchPing: RPCAction {
    typealias Input = Int
    typealias Output = Int
    static let name = "bench.ping"
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// The benchmark's real client, in the leader: topics in memory, a `tick` key that yields "PID NANOSECONDS" every
/// millisecond, and `bench.ping`.
final class BenchConnection: SharedConnection {
    typealias Value = String
    typealias Values = AsyncStream<String>

    private let topics = Mutex<[String: [Int: AsyncStream<String>.Continuation]]>([:])
    private let nextID = Atomic<Int>(0)

    func subscribe(_ key: String) async throws -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        if key == "tick" {
            let ticker = Task {
                let pid = getpid()
                while !Task.isCancelled {
                    continuation.yield("\(pid) \(monotonicNanoseconds())")
                    try? await Task.sleep(for: .milliseconds(1))
                }
            }
            continuation.onTermination = { _ in ticker.cancel() }
            return stream
        }
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        topics.withLock { $0[key, default: [:]][id] = continuation }
        continuation.onTermination = { [weak self] _ in self?.topics.withLock { _ = $0[key]?.removeValue(forKey: id) } }
        return stream
    }

    func publish(_ value: String, to key: String) async throws {
        for subscriber in topics.withLock({ Array(($0[key] ?? [:]).values) }) { subscriber.yield(value) }
    }

    func methods(_ handlers: RPCHandlers) {
        handlers.register(BenchPing.self) { $0 + 1 }
    }

    func close() async {}
}

func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

let quietLogger = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }

// MARK: - Members

/// `client-member DIRECTORY host`: a member that also serves `bench.ping` on a plain RPC master at DIRECTORY/raw.sock.
/// `client-member DIRECTORY subscriber BURST PACED OUT`: subscribes to "fan"; says "ready" at its first warm-up value
/// and "burst received" at the BURST-th measured one; writes the delivery latencies (µs) of BURST + PACED measured
/// values to OUT and exits.
/// `client-member DIRECTORY ticker`: subscribes to "tick"; says "from PID NANOSECONDS" at the first tick of each
/// leader. Every member says "leading T" / "following T", and exits when its stdin closes.
func clientMember(_ arguments: [String]) async -> Never {
    let directory = arguments[0]
    let client = ClusterClient(name: "bench", logger: quietLogger) { BenchConnection() }
    Task {
        for await event in client.events {
            switch event {
            case .leading(let term): say("leading \(term)")
            case .following(let term): say("following \(term)")
            case .leaderLost: break
            }
        }
    }
    do { try await client.start(.free(directory: directory)) } catch { fail("member: \(error)") }
    switch arguments[1] {
    case "host":
        let handlers = RPCHandlers()
        handlers.register(BenchPing.self) { $0 + 1 }
        let master = RPCMaster(id: "raw", handlers: handlers, logger: quietLogger)
        do { _ = try await master.listen(.unix(directory + "/raw.sock")) } catch { fail("raw master: \(error)") }
        say("raw ready")
    case "subscriber":
        let burst = Int(arguments[2]) ?? 0
        let count = burst + (Int(arguments[3]) ?? 0)
        let out = arguments[4]
        let stream = client.subscribe("fan")
        Task {
            var latencies: [String] = []
            latencies.reserveCapacity(count)
            var warm = false
            for await event in stream {
                guard case .value(let value) = event else { continue }
                if value.hasPrefix("warm") {
                    if !warm { say("ready") }
                    warm = true
                    continue
                }
                // "TAG NANOSECONDS": the tag says which phase sent it.
                let parts = value.split(separator: " ")
                guard parts.count == 2, let sent = UInt64(parts[1]) else { continue }
                latencies.append(String(format: "%@ %.1f", String(parts[0]), Double(monotonicNanoseconds() &- sent) / 1000))
                if latencies.count == burst { say("burst received") }
                if latencies.count == count {
                    try? latencies.joined(separator: "\n").write(toFile: out, atomically: true, encoding: .utf8)
                    exit(0)
                }
            }
        }
    case "ticker":
        let stream = client.subscribe("tick")
        Task {
            var leader = ""
            for await event in stream {
                guard case .value(let value) = event else { continue }
                let pid = String(value.split(separator: " ").first ?? "")
                if pid != leader {
                    leader = pid
                    say("from \(pid) \(monotonicNanoseconds())")
                }
            }
        }
    default:
        fail("member role \(arguments[1])?")
    }
    while readLine() != nil {}
    exit(0)
}

/// A member process, its stdout lines collected.
final class Member: Sendable {
    let process: RunningProcess
    private let input: Int32
    private let output: Lines

    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
    }

    init(_ arguments: [String], in directory: String) {
        var toChild: [Int32] = [0, 0]
        var fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { fail("pipe") }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).path
        var spec = ProcessSpec(
            executable: me, arguments: [me, "client-member", directory] + arguments, environment: ProcessInfo.processInfo.environment,
            descriptors: [toChild[0], fromChild[1], 2])
        spec.deathSignal = SIGKILL
        guard let process = try? Spawner.spawn(spec) else { fail("cannot start a member") }
        self.process = process
        close(toChild[0])
        close(fromChild[1])
        input = toChild[1]
        let output = Lines()
        self.output = output
        _ = LineReader.start(fromChild[0]) { line in output.lines.withLock { $0.append(line) } }
    }

    var lines: [String] { output.lines.withLock { $0 } }

    func waitFor(_ match: (String) -> Bool) async -> String {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let line = lines.first(where: match) { return line }
            try? await Task.sleep(for: .milliseconds(2))
        }
        fail("a member did not say what was awaited; it said: \(lines)")
    }

    func end() async {
        close(input)
        if await value(of: { await self.process.exit.value }, orNilAfter: .seconds(5)) == nil {
            process.signal(SIGKILL)
            _ = await process.exit.value
        }
    }
}

// MARK: - Driver

func summary(_ name: String, _ latencies: [Double], seconds: Double, count: Int) -> String {
    let sorted = latencies.sorted()
    return String(format: "%@ calls=%d per_s=%.0f p50_us=%.1f p99_us=%.1f", name, count, Double(count) / seconds,
                  percentile(sorted, 0.5), percentile(sorted, 0.99))
}

/// One at a time (latencies), then 64 in flight (rate) of `call`.
func measureCalls(_ name: String, calls: Int, _ call: @escaping @Sendable (Int) async throws -> Int) async -> [String] {
    for i in 0..<1000 { _ = try? await call(i) }  // warm-up
    var latencies: [Double] = []
    latencies.reserveCapacity(calls)
    let began = ContinuousClock.now
    for i in 0..<calls {
        let start = ContinuousClock.now
        guard (try? await call(i)) == i + 1 else { fail("\(name): a wrong answer") }
        latencies.append(milliseconds(ContinuousClock.now - start) * 1000)
    }
    let one = summary("\(name)_one_at_a_time", latencies, seconds: milliseconds(ContinuousClock.now - began) / 1000, count: calls)
    let parallelBegan = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
        for lane in 0..<64 {
            group.addTask {
                var i = lane
                while i < calls * 4 {
                    _ = try? await call(i)
                    i += 64
                }
            }
        }
    }
    let seconds = milliseconds(ContinuousClock.now - parallelBegan) / 1000
    return [one, String(format: "%@_64_in_flight calls=%d per_s=%.0f", name, calls * 4, Double(calls * 4) / seconds)]
}

func sharedClientBenchmark(calls: Int, values: Int, kills: Int) async {
    let directory = "/tmp/octo-client-bench-\(getpid())"
    try? FileManager.default.removeItem(atPath: directory)
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }

    // Invoke: a host member leads (and serves the plain RPC master); this process follows.
    let host = Member(["host"], in: directory)
    _ = await host.waitFor { $0 == "leading 1" }
    _ = await host.waitFor { $0 == "raw ready" }
    let follower = ClusterClient(name: "bench", logger: quietLogger) { BenchConnection() }
    do { try await follower.start(.free(directory: directory)) } catch { fail("follower: \(error)") }
    guard !follower.isLeader else { fail("the driver leads") }
    let single = ClusterClient(name: "single", logger: quietLogger) { BenchConnection() }
    do { try await single.start(.single) } catch { fail("single: \(error)") }
    let raw = RPCBranch(id: "raw-caller", logger: quietLogger)
    do { try await raw.connect(to: .unix(directory + "/raw.sock")) } catch { fail("raw: \(error)") }
    var lines: [String] = []
    for round in 1...3 {
        lines += await measureCalls("invoke_follower_round\(round)", calls: calls) { try await follower.invoke(BenchPing.self, $0) }
        lines += await measureCalls("invoke_in_leader_process_round\(round)", calls: calls) { try await single.invoke(BenchPing.self, $0) }
        lines += await measureCalls("rpc_raw_call_round\(round)", calls: calls) { try await raw.call(BenchPing.self, $0) }
    }
    for line in lines { print(line) }
    await raw.close()
    await single.close()

    // Fan-out: publishes from this process (a follower) to N subscriber processes: as fast as 64 in flight go
    // (throughput, and the latency that queueing then adds), then one at a time (the latency of one value).
    let paced = max(100, values / 10)
    for subscribers in [1, 4, 16] {
        let members = (0..<subscribers).map { Member(["subscriber", "\(values)", "\(paced)", "\(directory)/fan-\($0).txt"], in: directory) }
        var warm = 0
        while !members.allSatisfy({ $0.lines.contains("ready") }) {
            warm += 1
            _ = try? await follower.publish("warm\(warm)", to: "fan")
            try? await Task.sleep(for: .milliseconds(5))
        }
        let began = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for lane in 0..<64 {
                group.addTask {
                    var i = lane
                    while i < values {
                        do { try await follower.publish("t \(monotonicNanoseconds())", to: "fan") } catch { fail("publish: \(error)") }
                        i += 64
                    }
                }
            }
        }
        // The burst ends when the slowest subscriber has its last value; then the paced values go.
        while !members.allSatisfy({ $0.lines.contains("burst received") }) { try? await Task.sleep(for: .milliseconds(1)) }
        let seconds = milliseconds(ContinuousClock.now - began) / 1000
        for _ in 0..<paced {
            do { try await follower.publish("l \(monotonicNanoseconds())", to: "fan") } catch { fail("publish: \(error)") }
            try? await Task.sleep(for: .milliseconds(1))
        }
        for member in members { _ = await member.process.exit.value }
        var burst: [Double] = []
        var single: [Double] = []
        for index in 0..<subscribers {
            let text = (try? String(contentsOfFile: "\(directory)/fan-\(index).txt", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count == 2, let micros = Double(parts[1]) else { continue }
                if parts[0] == "t" { burst.append(micros) } else { single.append(micros) }
            }
        }
        guard burst.count == values * subscribers, single.count == paced * subscribers else {
            fail("fan-out to \(subscribers): \(burst.count + single.count) of \((values + paced) * subscribers) values arrived")
        }
        burst.sort()
        single.sort()
        print(String(format: "fanout subscribers=%d values=%d values_per_s=%.0f deliveries_per_s=%.0f burst_p50_us=%.0f burst_p99_us=%.0f one_at_a_time_p50_us=%.0f one_at_a_time_p99_us=%.0f",
                     subscribers, values, Double(values) / seconds, Double(values * subscribers) / seconds,
                     percentile(burst, 0.5), percentile(burst, 0.99), percentile(single, 0.5), percentile(single, 0.99)))
        for member in members { await member.end() }
    }
    await follower.close()
    await host.end()

    // Failover: three tickers; the leader killed, a new member started each time so that three remain.
    let failoverDirectory = directory + "/failover"
    try? FileManager.default.createDirectory(atPath: failoverDirectory, withIntermediateDirectories: true)
    var members: [Member] = []
    for _ in 0..<3 {
        let member = Member(["ticker"], in: failoverDirectory)
        _ = await member.waitFor { $0.hasPrefix("from ") }
        members.append(member)
    }
    var times: [Double] = []
    for kill in 1...kills {
        guard let leader = members.first(where: { $0.lines.contains { $0.hasPrefix("leading") } }) else { fail("no leader") }
        let survivors = members.filter { $0 !== leader }
        let before = survivors.map { $0.lines.count }
        let killedAt = monotonicNanoseconds()
        leader.process.signal(SIGKILL)
        _ = await leader.process.exit.value
        var slowest: UInt64 = 0
        for (survivor, seen) in zip(survivors, before) {
            let line = await survivor.waitFor { line in
                line.hasPrefix("from ") && !line.contains("from \(leader.process.pid) ")
                    && survivor.lines.firstIndex(of: line).map { $0 >= seen } == true
            }
            let at = UInt64(line.split(separator: " ")[2]) ?? 0
            slowest = max(slowest, at &- killedAt)
        }
        times.append(Double(slowest) / 1e6)
        print(String(format: "failover %d: %.2f ms", kill, times.last!))
        let replacement = Member(["ticker"], in: failoverDirectory)
        _ = await replacement.waitFor { $0.hasPrefix("from ") }
        members = survivors + [replacement]
    }
    for member in members { await member.end() }
    let sorted = times.sorted()
    print(String(format: "failover kills=%d median_ms=%.2f p90_ms=%.2f max_ms=%.2f", kills, median(times), percentile(sorted, 0.9), sorted.last ?? 0))
}
