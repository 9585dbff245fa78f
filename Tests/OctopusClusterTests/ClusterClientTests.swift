import Foundation
import Logging
import NIOCore
import OctopusCluster
import OctopusRPC
import OctopusSystem
import Synchronization
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// One free-mode cluster client process (`ClusterFixture client`), driven through its stdin, its stdout lines
/// collected. The test that starts it ends it (`end`), by pid.
final class ClientProcess: Sendable {
    let process: RunningProcess
    private let input: Int32
    private final class Output: Sendable {
        let lines = Mutex<[(line: String, at: ContinuousClock.Instant)]>([])
    }
    private let output = Output()
    private let reader: Task<Void, Never>

    init(directory: String, name: String = "board", board: BoardServer) throws {
        var toChild: [Int32] = [0, 0]
        var fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        var spec = ProcessSpec(
            executable: fixtureBinary, arguments: [fixtureBinary, "client", directory, name, board.path],
            environment: ProcessInfo.processInfo.environment, descriptors: [toChild[0], fromChild[1], 2], directory: directory)
        spec.deathSignal = SIGKILL
        do {
            process = try Spawner.spawn(spec)
        } catch {
            for fd in toChild + fromChild { close(fd) }
            throw error
        }
        close(toChild[0])
        close(fromChild[1])
        input = toChild[1]
        let output = self.output
        reader = LineReader.start(fromChild[0]) { line in output.lines.withLock { $0.append((line, .now)) } }
    }

    var pid: Int32 { process.pid }
    var lines: [String] { output.lines.withLock { $0.map(\.line) } }

    func send(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(input, $0.baseAddress, $0.count) }
    }

    /// The first line that satisfies `match`, with when it was read; waits at most `limit`.
    func first(within limit: Duration = .seconds(30), _ match: @escaping (String) -> Bool) async -> (line: String, at: ContinuousClock.Instant)? {
        var found: (String, ContinuousClock.Instant)?
        _ = await waitUntil(within: limit) {
            found = output.lines.withLock { $0.first { match($0.line) } }
            return found != nil
        }
        return found
    }

    func waitFor(_ line: String, within limit: Duration = .seconds(30)) async -> Bool {
        await first(within: limit) { $0 == line } != nil
    }

    func lines(startingWith prefix: String) -> [String] { lines.filter { $0.hasPrefix(prefix) } }

    /// The lines read after `instant`.
    func lines(after instant: ContinuousClock.Instant) -> [(line: String, at: ContinuousClock.Instant)] {
        output.lines.withLock { $0.filter { $0.at > instant } }
    }

    /// "leading T" or "following T" for the latest term this process has seen.
    var role: String? { lines.last { $0.hasPrefix("leading") || $0.hasPrefix("following") } }

    func end() async {
        if !process.hasExited { kill(process.pid, SIGKILL) }
        _ = await process.exit.value
        close(input)
        await reader.value
    }
}

/// Starts `count` client processes in one directory (the first one started leads), runs `body`, ends them all.
func withClients(
    _ count: Int, board: BoardServer, in scratch: Scratch, _ body: ([ClientProcess]) async throws -> Void
) async throws {
    var clients: [ClientProcess] = []
    do {
        for _ in 0..<count {
            let client = try ClientProcess(directory: scratch.path, board: board)
            clients.append(client)
            // One at a time, so that the first leads and the others follow (the election itself is tested apart).
            #expect(await client.first { $0.hasPrefix("leading") || $0.hasPrefix("following") } != nil)
        }
        try await body(clients)
    } catch {
        for client in clients { await client.end() }
        throw error
    }
    for client in clients { await client.end() }
}

@Suite("Cluster client in free mode: leader and followers in separate processes", .serialized)
struct ClusterClientTests {
    @Test("Every subscriber in every process gets every value once and in order; a late one the last value at once; one subscription at the real client")
    func subscribersShareOneSubscription() async throws {
        let scratch = try Scratch()
        let board = try BoardServer(path: scratch.path + "/service.sock")
        defer { board.stop() }
        try await withClients(3, board: board, in: scratch) { clients in
            #expect(clients[0].role == "leading 1")
            #expect(clients[1].role == "following 1" && clients[2].role == "following 1")
            for client in clients { client.send("subscribe news") }
            #expect(await waitUntil { board.count("sub news") == 1 })
            // Every follower's subscription has reached the leader once the leader answers its next request (the
            // requests of one connection are answered in order).
            for (index, client) in clients.enumerated() {
                client.send("invoke sync\(index) add 1 1")
                #expect(await client.waitFor("invoked sync\(index) 2"))
            }
            // Published by a follower: through the leader's real client, back from the board to every subscriber.
            for i in 1...50 { clients[2].send("publish news v\(i)") }
            let expected = (1...50).map { "value news v\($0)" }
            for client in clients {
                #expect(await waitUntil { client.lines(startingWith: "value news").count >= 50 })
                #expect(client.lines(startingWith: "value news") == expected)
            }
            #expect(clients[2].lines(startingWith: "published news").count == 50)
            #expect(board.connections.total == 1, "only the leader connects to the real service")
            #expect(board.count("sub news") == 1)

            // A late subscriber, in a new process: the last value at once, and a synchronous read of it.
            let late = try ClientProcess(directory: scratch.path, board: board)
            #expect(await late.waitFor("following 1"))
            late.send("subscribe news")
            #expect(await late.waitFor("value news v50"))
            late.send("current news")
            #expect(await late.waitFor("current news v50"))
            late.send("current other")
            #expect(await late.waitFor("current other -"))
            #expect(board.count("sub news") == 1)

            // Every follower's subscriber goes: the leader's own still wants the key, so the real client keeps it…
            let followers = Array(clients[1...]) + [late]
            for client in followers { client.send("unsubscribe news") }
            for (index, client) in followers.enumerated() {
                client.send("invoke sync-after\(index) add 2 2")
                #expect(await client.waitFor("invoked sync-after\(index) 4"))
            }
            #expect(board.count("unsub news") == 0)
            #expect(board.subscriberCount("news") == 1)
            // …until the last one, in the leader: the real client sees one unsubscribe.
            clients[0].send("unsubscribe news")
            #expect(await waitUntil { board.count("unsub news") == 1 })
            #expect(board.subscriberCount("news") == 0)
            #expect(board.count("sub news") == 1)
            await late.end()
        }
    }

    @Test("A subscription the real client cannot make reaches the subscriber as 30017 and is retried until it works")
    func failedSubscriptionIsRetried() async throws {
        let scratch = try Scratch()
        let board = try BoardServer(path: scratch.path + "/service.sock")
        defer { board.stop() }
        try await withClients(2, board: board, in: scratch) { clients in
            clients[1].send("subscribe broken-feed")
            #expect(await waitUntil { board.count("sub broken-feed") == 1 })
            #expect(board.count("refused broken-feed") == 3)
            #expect(await waitUntil { clients[1].lines(startingWith: "failed broken-feed").count >= 3 })
            let failures = clients[1].lines(startingWith: "failed broken-feed")
            #expect(failures.count == 3)
            #expect(failures.allSatisfy { $0.hasPrefix("failed broken-feed 30017 ") && $0.contains("is not available yet") })
            board.publish("broken-feed", "finally")
            #expect(await clients[1].waitFor("value broken-feed finally"))
        }
    }

    @Test("invoke from a follower: the result, the real client's error typed with its message, the deadline")
    func invokeFromAFollower() async throws {
        let scratch = try Scratch()
        let board = try BoardServer(path: scratch.path + "/service.sock")
        defer { board.stop() }
        try await withClients(2, board: board, in: scratch) { clients in
            let follower = clients[1]
            follower.send("invoke a add 20 22")
            #expect(await follower.waitFor("invoked a 42"))
            follower.send("invoke b fail boom")
            let failed = await follower.first { $0.hasPrefix("error b ") }
            #expect(failed?.line.hasPrefix("error b 30006 ") == true, "a remote error: \(failed?.line ?? "none")")
            #expect(failed?.line.contains("the real client failed: boom") == true)
            follower.send("invoke c slow 5000 timeout=200")
            let late = await follower.first { $0.hasPrefix("error c ") }
            #expect(late?.line.hasPrefix("error c 30003 ") == true, "timed out: \(late?.line ?? "none")")
            follower.send("invoke d raw add {\"a\":1,\"b\":2}")
            #expect(await follower.waitFor("invoked d 3"))
            follower.send("invoke e raw nosuch {}")
            let missing = await follower.first { $0.hasPrefix("error e ") }
            #expect(missing?.line.contains("has no method \"nosuch\"") == true, "\(missing?.line ?? "none")")
            // The same calls in the leader's own process.
            clients[0].send("invoke f add 1 2")
            #expect(await clients[0].waitFor("invoked f 3"))
            clients[0].send("invoke g fail here")
            #expect(await clients[0].first { $0.hasPrefix("error g ") && $0.contains("the real client failed: here") } != nil)
        }
    }

    @Test("SIGKILL of the leader in a stream of publishes and invokes: a follower leads, every subscription is made again, pending calls fail or are retried as marked")
    func failoverAfterTheLeaderIsKilled() async throws {
        let scratch = try Scratch()
        let board = try BoardServer(path: scratch.path + "/service.sock")
        defer { board.stop() }
        try await withClients(3, board: board, in: scratch) { clients in
            for client in clients { client.send("subscribe feed") }
            #expect(await waitUntil { board.count("sub feed") == 1 })
            for (index, client) in clients.enumerated() {
                client.send("invoke sync\(index) add 0 0")
                #expect(await client.waitFor("invoked sync\(index) 0"))
            }
            // A stream of values from the service, and of publishes through a follower.
            let streaming = Task {
                var n = 0
                while !Task.isCancelled {
                    n += 1
                    board.publish("feed", "b\(n)")
                    if n % 5 == 0 { clients[2].send("publish feed p\(n)") }
                    try? await Task.sleep(for: .milliseconds(5))
                }
            }
            defer { streaming.cancel() }
            #expect(await waitUntil { clients.allSatisfy { $0.lines(startingWith: "value feed").count >= 20 } })
            // Calls in flight at the leader when it dies: far longer than anything before the kill can take, even when
            // the machine starves this test for seconds (with 3 s, both had once been answered before the kill).
            clients[1].send("invoke once slow 120000 timeout=240000")
            clients[1].send("invoke again slow 2000 idempotent timeout=240000")
            clients[2].send("invoke once2 slow 120000 timeout=240000")
            try await Task.sleep(for: .milliseconds(100))

            let killedAt = ContinuousClock.now
            kill(clients[0].pid, SIGKILL)
            _ = await clients[0].process.exit.value
            let survivors = Array(clients[1...])
            #expect(await waitUntil { survivors.contains { $0.role == "leading 2" } })
            let newLeader = try #require(survivors.first { $0.role == "leading 2" })
            let follower = try #require(survivors.first { $0 !== newLeader })
            #expect(await follower.waitFor("following 2"))

            // No subscription lost: the new leader subscribes once, and values reach both survivors through it.
            #expect(await waitUntil { board.count("sub feed") == 2 })
            #expect(board.connections.total == 2)
            for survivor in survivors {
                #expect(await waitUntil { survivor.lines(after: killedAt).contains { $0.line.hasPrefix("value feed b") } })
            }
            let firstValues = survivors.compactMap { survivor in
                survivor.lines(after: killedAt).first { $0.line.hasPrefix("value feed b") }?.at
            }
            if let slowest = firstValues.max() {
                print("failover: the first value through the new leader reached every survivor \(slowest - killedAt) after the kill")
            }

            // Pending calls: not idempotent → 30014 at once; idempotent → answered by the new leader.
            let once = await clients[1].first { $0.hasPrefix("error once ") || $0.hasPrefix("invoked once ") }
            #expect(once?.line.hasPrefix("error once 30014 ") == true, "\(once?.line ?? "none")")
            let once2 = await clients[2].first { $0.hasPrefix("error once2 ") || $0.hasPrefix("invoked once2 ") }
            #expect(once2?.line.hasPrefix("error once2 30014 ") == true, "\(once2?.line ?? "none")")
            #expect(await clients[1].waitFor("invoked again 2000"))
            // Publishing goes on through the new leader.
            #expect(await waitUntil {
                survivors.allSatisfy { $0.lines(after: killedAt).contains { $0.line.hasPrefix("value feed p") } }
            })
        }
    }

    @Test("Free mode: one leader at a time, each term one higher; re-election after the leader is killed or leaves")
    func oneLeaderAtATime() async throws {
        let scratch = try Scratch()
        let board = try BoardServer(path: scratch.path + "/service.sock")
        defer { board.stop() }
        // Started together: the election decides.
        var clients: [ClientProcess] = []
        defer { for client in clients { kill(client.pid, SIGKILL) } }
        for _ in 0..<3 { clients.append(try ClientProcess(directory: scratch.path, board: board)) }
        do {
            func leaders(_ term: Int) -> [ClientProcess] { clients.filter { $0.lines.contains("leading \(term)") } }
            #expect(await waitUntil { clients.allSatisfy { $0.role != nil } })
            #expect(leaders(1).count == 1)
            #expect(clients.filter { $0.role == "following 1" }.count == 2)

            // Killed: one of the two others leads term 2, the last follows it.
            let first = try #require(leaders(1).first)
            kill(first.pid, SIGKILL)
            _ = await first.process.exit.value
            var alive = clients.filter { $0 !== first }
            #expect(await waitUntil { alive.contains { $0.role == "leading 2" } && alive.contains { $0.role == "following 2" } })
            #expect(leaders(2).count == 1)

            // Leaves (closes its client): the last one leads term 3; a newcomer follows it.
            let second = try #require(leaders(2).first)
            second.send("quit")
            #expect(await second.process.exit.value == .exited(0))
            alive = alive.filter { $0 !== second }
            #expect(await waitUntil { alive[0].role == "leading 3" })
            let newcomer = try ClientProcess(directory: scratch.path, board: board)
            clients.append(newcomer)
            #expect(await newcomer.waitFor("following 3"))
            #expect(leaders(3).count == 1)
            // Never two leaders of one term, and terms only grow in each process.
            for client in clients {
                let terms = client.lines.compactMap { line -> Int? in
                    let words = line.split(separator: " ")
                    return words.count == 2 && (words[0] == "leading" || words[0] == "following") ? Int(words[1]) : nil
                }
                #expect(terms == terms.sorted(), "\(client.lines)")
            }
            #expect(try String(contentsOfFile: scratch.path + "/board.term", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == "3")
            newcomer.send("invoke n add 3 4")
            #expect(await newcomer.waitFor("invoked n 7"))
        } catch {
            for client in clients { await client.end() }
            throw error
        }
        for client in clients { await client.end() }
    }

    @Test("A follower that closes its client stops waiting to lead at once (its thread blocked in flock ends), and never leads")
    func aClosedFollowerStopsWaitingToLead() async throws {
        let scratch = try Scratch()
        let board = try BoardServer(path: scratch.path + "/service.sock")
        defer { board.stop() }
        try await withClients(2, board: board, in: scratch) { clients in
            let (leader, follower) = (clients[0], clients[1])
            #expect(follower.role == "following 1")
            /// How many of the follower's threads wait to lead, asked now.
            func waiting() async -> Int? {
                let asked = ContinuousClock.now
                follower.send("threads cc-leader-wait")
                var count: Int?
                _ = await waitUntil {
                    count = follower.lines(after: asked).last { $0.line.hasPrefix("threads cc-leader-wait ") }
                        .flatMap { Int($0.line.split(separator: " ").last ?? "") }
                    return count != nil
                }
                return count
            }
            let before = await waiting()
            #expect(before == 1, "\(follower.lines)")
            follower.send("close")
            #expect(await follower.waitFor("closed"))
            // The thread is done with the lock when the close returns; it may take a moment more to end.
            var count = await waiting()
            for _ in 0..<100 where count != 0 {
                try await Task.sleep(for: .milliseconds(20))
                count = await waiting()
            }
            #expect(count == 0)
            // The leader leaves: a newcomer leads the next term, the closed client never does.
            leader.send("quit")
            #expect(await leader.process.exit.value == .exited(0))
            let newcomer = try ClientProcess(directory: scratch.path, board: board)
            #expect(await newcomer.waitFor("leading 2"))
            #expect(!follower.lines.contains { $0.hasPrefix("leading") })
            await newcomer.end()
        }
    }

    @Test("Bad input on the leader's socket — garbage, an oversized frame, a stale term — closes that connection only")
    func badInputClosesOneConnection() async throws {
        let scratch = try Scratch()
        let board = try BoardServer(path: scratch.path + "/service.sock")
        defer { board.stop() }
        try await withClients(2, board: board, in: scratch) { clients in
            let leaderSocket = scratch.path + "/board.sock"
            clients[1].send("subscribe news")
            #expect(await waitUntil { board.count("sub news") == 1 })

            let garbage = try RawSocket(path: leaderSocket)
            garbage.send(Array("GET / HTTP/1.1\r\nHost: leader\r\n\r\n".utf8))
            #expect(await onThread { garbage.readUntilClosed() }, "garbage: the connection is closed")

            // A request header that claims 100 MiB of body: refused from the header alone.
            var oversized = ByteBuffer()
            oversized.writeMultipleIntegers(
                UInt16(0x4F43), UInt8(1), UInt8(1), UInt16(0), UInt16(0), UInt64(1), UInt32(0), UInt32(1), UInt32(100 << 20))
            let big = try RawSocket(path: leaderSocket)
            big.send(Array(oversized.readableBytesView))
            #expect(await onThread { big.readUntilClosed() }, "oversized: the connection is closed")

            // A well-formed request of a leadership that is not this one: 30018, then the connection is closed.
            let intruder = RPCBranch(id: "intruder", options: RPCOptions(), logger: Logger(label: "intruder") { _ in SwiftLogNoOpLogHandler() })
            let events = intruder.events
            try await intruder.connect(to: .unix(leaderSocket))
            var stale = ByteBuffer()
            stale.writeInteger(UInt64(99))
            stale.writeInteger(UInt16(4))
            stale.writeString("news")
            do {
                _ = try await intruder.callRaw("cc.subscribe", body: stale, on: nil, timeout: .seconds(10))
                Issue.record("a stale term was accepted")
            } catch let error as RPCError {
                #expect(error.code == .staleTerm, "\(error)")
            }
            var dropped = false
            for await event in events {
                if case .disconnected = event {
                    dropped = true
                    break
                }
            }
            #expect(dropped, "the intruder's connection was closed")
            await intruder.close()

            // The leader and its follower went on as they were.
            #expect(clients[0].role == "leading 1" && clients[1].role == "following 1")
            clients[1].send("invoke after add 5 6")
            #expect(await clients[1].waitFor("invoked after 11"))
            board.publish("news", "still-here")
            #expect(await clients[1].waitFor("value news still-here"))
            #expect(board.count("sub news") == 1)
            #expect(!clients[1].lines.contains("lost"))
        }
    }

    @Test("A follower whose leader fails to say its term asks again until it answers, and is then ready")
    func helloIsAskedAgainUntilTheLeaderAnswers() async throws {
        let scratch = try Scratch()
        let quiet = Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }
        // A stand-in leader at the socket a cluster-mode follower looks for: its first two answers are errors.
        let handlers = RPCHandlers()
        let attempts = Atomic<Int>(0)
        handlers.register(TermQuestion.self) { _ in
            guard attempts.wrappingAdd(1, ordering: .relaxed).newValue > 2 else {
                throw RPCError(.remote, "not yet")
            }
            return 7
        }
        let secret = Array("a cluster's secret".utf8)
        var options = RPCOptions()
        options.secret = secret
        let master = RPCMaster(id: "leader", handlers: handlers, options: options, logger: quiet)
        _ = try await master.listen(.unix(scratch.path + "/client-topics.sock"))
        let client = ClusterClient(name: "topics", logger: quiet) { Topics() }
        try await client.start(.cluster(leads: false, runDirectory: scratch.path, secret: secret))
        #expect(!client.isLeader && client.term == 7)
        #expect(attempts.load(ordering: .relaxed) == 3)
        await client.close()
        await master.close()
    }

    @Test("Single mode: the same API in one process, no socket")
    func singleProcess() async throws {
        let topics = Topics()
        let client = ClusterClient(name: "memory", logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }) { topics }
        try await client.start(.single)
        #expect(client.isLeader && client.term == 1)
        final class Seen: Sendable { let values = Mutex<[Int: [String]]>([:]) }
        let seen = Seen()
        var readers: [Task<Void, Never>] = []
        for index in 0..<2 {
            let stream = client.subscribe("k")
            readers.append(Task {
                for await event in stream {
                    if case .value(let value) = event { seen.values.withLock { $0[index, default: []].append(value) } }
                }
            })
        }
        defer { for reader in readers { reader.cancel() } }
        // One subscription at the real client for both (values published before it exists are not anyone's).
        #expect(await waitUntil { topics.count("k") == 1 })
        try await client.publish("one", to: "k")
        try await client.publish("two", to: "k")
        #expect(await waitUntil { seen.values.withLock { $0[0] == ["one", "two"] && $0[1] == ["one", "two"] } })
        #expect(topics.count("k") == 1)
        #expect(client.current("k") == "two")
        #expect(try await client.invoke(Echo.self, "hi") == "hi!")
        await client.close()
        do {
            try await client.publish("late", to: "k")
            Issue.record("publish after close succeeded")
        } catch let error as RPCError {
            #expect(error.code == .closed)
        }
    }
}

/// The question a follower asks a leader when it connects (`ClientHello`'s wire shape).
struct TermQuestion: RPCAction {
    typealias Input = Int
    typealias Output = UInt64
    static let name = "cc.hello"
}

struct Echo: RPCAction {
    typealias Input = String
    typealias Output = String
    static let name = "echo"
}

/// An in-process topic service for single mode.
final class Topics: SharedConnection {
    typealias Value = String
    typealias Values = AsyncStream<String>
    private let subscribers = Mutex<[String: [AsyncStream<String>.Continuation]]>([:])

    func subscribe(_ key: String) async throws -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        subscribers.withLock { $0[key, default: []].append(continuation) }
        return stream
    }

    func publish(_ value: String, to key: String) async throws {
        for subscriber in subscribers.withLock({ $0[key] ?? [] }) { subscriber.yield(value) }
    }

    func count(_ key: String) -> Int { subscribers.withLock { $0[key]?.count ?? 0 } }

    func methods(_ handlers: RPCHandlers) {
        handlers.register(Echo.self) { $0 + "!" }
    }

    func close() async {}
}

@Suite("Cluster client in cluster mode: the agent leads, the workers follow", .serialized)
struct ClusterModeClientTests {
    /// Publishes probes on the board until every worker has logged one after `mark` lines of news.log; the values
    /// published before a worker's subscription reached the leader are nobody's, so a test waits this way.
    func probeUntilEveryWorkerHears(_ board: BoardServer, _ scratch: Scratch, workers: Int, tag: String) async -> Bool {
        var n = 0
        return await waitUntil {
            n += 1
            board.publish("news", "\(tag)\(n)")
            let heard = Set(scratch.lines("news.log").filter { $0.contains(" \(tag)") }.map { $0.split(separator: " ")[1] })
            return heard.count == workers
        }
    }

    @Test("One connection to the service for 4 workers; every worker gets every value; the agent's replacement connects and subscribes again")
    func agentHoldsTheConnection() async throws {
        let scratch = try Scratch()
        let board = try BoardServer(path: scratch.path + "/service.sock")
        defer { board.stop() }
        try scratch.config(clusterConfig(workers: 4))
        try await withCluster(scratch, environment: ["FIXTURE_BOARD": board.path]) { cluster in
            #expect(await cluster.waitUntilReady())
            // Each worker invoked the real client's method through the agent.
            #expect(await waitUntil { scratch.lines("news.log").filter { $0.hasSuffix(" invoked 5") }.count == 4 })
            #expect(await probeUntilEveryWorkerHears(board, scratch, workers: 4, tag: "probe"))
            #expect(board.connections.total == 1, "one connection on the machine, the agent's")
            #expect(board.count("sub news") == 1, "one subscription for four workers")
            #expect(FileManager.default.fileExists(atPath: scratch.path + "/run/client-board.sock"))

            for i in 1...20 { board.publish("news", "v\(i)") }
            for worker in 1...4 {
                #expect(await waitUntil {
                    scratch.lines("news.log").filter { $0.hasPrefix("worker \(worker) v") }.count == 20
                })
                #expect(scratch.lines("news.log").filter { $0.hasPrefix("worker \(worker) v") } == (1...20).map { "worker \(worker) v\($0)" })
            }

            // The agent dies: its replacement makes the real client again and subscribes for the workers.
            let agent = try #require(try await cluster.status().processes.first { $0.role == .agent })
            kill(agent.pid, SIGKILL)
            #expect(await waitUntil { board.count("sub news") == 2 })
            #expect(await probeUntilEveryWorkerHears(board, scratch, workers: 4, tag: "after"))
            #expect(board.connections.total == 2)
            #expect(board.connections.open == 1)
            #expect(try String(contentsOfFile: scratch.path + "/run/client-board.term", encoding: .utf8) == "2\n")
        }
        // At the stop the agent closed the real client.
        #expect(await waitUntil { board.connections.open == 0 })
    }
}
