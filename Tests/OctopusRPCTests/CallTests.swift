import Foundation
import NIOCore
import Testing
import TestSupport

@testable import OctopusRPC

/// Calls between a branch and a master, over memory and over a Unix socket (the same engine underneath).
@Suite struct CallTests {
    struct Pair {
        let master: RPCMaster
        let branch: RPCBranch
        let gate: Gate

        func close() async {
            await branch.close()
            await master.close()
        }
    }

    static let transports = ["memory", "unix", "tcp"]

    func pair(_ transport: String, options: RPCOptions = testOptions()) async throws -> Pair {
        let handlers = RPCHandlers()
        let gate = Gate()
        handlers.register(Add.self) { input, _ in input.a + input.b }
        handlers.register(Echo.self) { text, _ in
            // Out of order on purpose: a later call may finish first.
            try await Task.sleep(for: .microseconds(Int.random(in: 0...2000)))
            return text
        }
        handlers.register(Block.self) { value, _ in
            try await gate.pass()
            return value
        }
        handlers.register(Fail.self) { text, _ in throw HandlerFailure(text: text) }
        handlers.registerRaw("mirror") { body, _ in body }  // answered in place, without suspending
        handlers.registerJSON("shout") { json, _ in
            let text = try JSONDecoder().decode(String.self, from: json)
            return try JSONEncoder().encode(text.uppercased())
        }
        let master = RPCMaster(handlers: handlers, options: options, logger: quiet)
        let address: RPCAddress =
            switch transport {
            case "unix": .unix(socketPath())
            case "tcp": .tcp(host: "127.0.0.1", port: 0)
            default: memoryAddress()
            }
        let bound = try await master.listen(address)
        let branch = RPCBranch(id: "b1", options: options, logger: quiet)
        try await branch.connect(to: bound)
        return Pair(master: master, branch: branch, gate: gate)
    }

    @Test(arguments: transports) func typedAndJSONRoundTrips(transport: String) async throws {
        let p = try await pair(transport)
        #expect(try await p.branch.call(Add.self, .init(a: 1, b: 2)) == 3)
        #expect(try await p.branch.call(Echo.self, "héllo\0\n") == "héllo\0\n")
        let json = try await p.branch.callJSON("add", Data(#"{"a":40,"b":2}"#.utf8))
        #expect(String(decoding: json, as: UTF8.self) == "42")
        #expect(String(decoding: try await p.branch.callJSON("shout", Data(#""quiet""#.utf8)), as: UTF8.self) == #""QUIET""#)
        await p.close()
    }

    @Test(arguments: transports) func aThousandConcurrentCallsAnsweredOutOfOrder(transport: String) async throws {
        let p = try await pair(transport)
        try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for i in 0..<1000 {
                group.addTask { (i, try await p.branch.call(Echo.self, "call \(i)", timeout: .seconds(60))) }
            }
            var seen = Set<Int>()
            for try await (i, answer) in group {
                #expect(answer == "call \(i)")
                seen.insert(i)
            }
            #expect(seen.count == 1000)
        }
        await p.close()
    }

    /// Answers written in one flush are batched (small frames copied into one buffer, big ones written as they are):
    /// mixed sizes around the batching limit, many in flight: each answer comes back whole, byte for byte.
    @Test(arguments: transports) func framesOfMixedSizesComeBackWhole(transport: String) async throws {
        let p = try await pair(transport)
        let sizes = [0, 1, 57, 4000, 4068, 4069, 4097, 9000, 70_000]
        try await withThrowingTaskGroup(of: (Int, ByteBuffer).self) { group in
            for i in 0..<400 {
                group.addTask {
                    var body = ByteBuffer()
                    body.writeBytes((0..<sizes[i % sizes.count]).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) })
                    return (i, try await p.branch.callRaw("mirror", body: body, on: nil, timeout: .seconds(60)))
                }
            }
            var seen = 0
            for try await (i, answer) in group {
                let expected = (0..<sizes[i % sizes.count]).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
                #expect(Array(answer.readableBytesView) == expected, "call \(i)")
                seen += 1
            }
            #expect(seen == 400)
        }
        await p.close()
    }

    /// A handler that does not `await` is immediate: served in place on the event loop without a task (unless
    /// handlers are sent to the pool); one that does runs in a task. Both answer the same way.
    @Test(arguments: [true, false]) func immediateHandlersRunWithoutATaskOnTheEventLoop(onLoop: Bool) async throws {
        var options = testOptions()
        options.handlersOnEventLoop = onLoop
        let handlers = RPCHandlers()
        handlers.register(Echo.self) { text in
            withUnsafeCurrentTask { $0 == nil } ? "\(text): no task" : "\(text): in a task"
        }
        handlers.register(Add.self) { input in
            await Task.yield()
            return input.a + input.b
        }
        let master = RPCMaster(handlers: handlers, options: options, logger: quiet)
        let address = try await master.listen(.unix(socketPath()))
        let branch = RPCBranch(id: "b1", options: options, logger: quiet)
        try await branch.connect(to: address)
        #expect(try await branch.call(Echo.self, "served") == (onLoop ? "served: no task" : "served: in a task"))
        #expect(try await branch.call(Add.self, .init(a: 2, b: 3)) == 5)
        await branch.close()
        await master.close()
    }

    /// Callers on the branch's executor (the low-latency way) run on its event loop; many of them at once, each
    /// resumed there in turn, all get their own answers.
    @Test(arguments: transports) func callersOnTheBranchExecutorRunOnItsEventLoop(transport: String) async throws {
        let p = try await pair(transport)
        let loop = p.branch.eventLoop
        try await withTaskExecutorPreference(p.branch.executor) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<200 {
                    group.addTask { () async throws -> Void in
                        #expect(loop.inEventLoop)
                        #expect(try await p.branch.call(Add.self, .init(a: i, b: 1)) == i + 1)
                        #expect(loop.inEventLoop)
                        #expect(try await p.branch.call(Echo.self, "call \(i)", timeout: .seconds(60)) == "call \(i)")
                        #expect(loop.inEventLoop)
                    }
                }
                try await group.waitForAll()
            }
        }
        await p.close()
    }

    @Test(arguments: transports) func aDeadlineFailsTheCallAndCancelsTheHandler(transport: String) async throws {
        let p = try await pair(transport)
        let error = await expectRPCError(.timedOut) {
            _ = try await p.branch.call(Block.self, 1, timeout: .milliseconds(50))
        }
        #expect(error?.action == "block")
        await eventually("the handler is cancelled by the caller's deadline") { p.gate.cancelled == 1 }
        // The connection is still good.
        #expect(try await p.branch.call(Add.self, .init(a: 2, b: 2)) == 4)
        await p.close()
    }

    @Test(arguments: transports) func cancellingTheCallingTaskCancelsTheCall(transport: String) async throws {
        let p = try await pair(transport)
        let call = Task { try await p.branch.call(Block.self, 1, timeout: .seconds(60)) }
        await eventually("the handler runs") { p.gate.entered == 1 }
        call.cancel()
        do {
            _ = try await call.value
            Issue.record("a cancelled call returned")
        } catch let error as RPCError {
            #expect(error.code == .cancelled)
        }
        await eventually("the far side's handler is cancelled") { p.gate.cancelled == 1 }
        await p.close()
    }

    @Test(arguments: transports) func aDroppedConnectionFailsEveryPendingCallAtOnce(transport: String) async throws {
        let p = try await pair(transport)
        let calls = (0..<20).map { i in
            Task { () -> RPCError? in
                do {
                    _ = try await p.branch.call(Block.self, i, timeout: .seconds(600))
                    return nil
                } catch {
                    return error as? RPCError
                }
            }
        }
        await eventually("every handler runs") { p.gate.entered == 20 }
        await p.master.close()  // the master's end goes away: the branch sees its connection drop
        for call in calls {
            let error = await call.value
            #expect(error?.code == .disconnected, "\(String(describing: error))")
        }
        await p.branch.close()
    }

    @Test(arguments: transports) func handlerErrorsArriveWithTheirDescriptionAndRPCErrorsKeepTheirCode(transport: String)
        async throws
    {
        let p = try await pair(transport)
        let remote = await expectRPCError(.remote) { _ = try await p.branch.call(Fail.self, "disk full") }
        #expect(remote?.message == "handler failure: disk full")
        #expect(remote?.action == "fail")
        let missing = await expectRPCError(.noSuchAction) { _ = try await p.branch.callJSON("nope", Data("1".utf8)) }
        #expect(missing?.action == "nope")
        let undecodable = await expectRPCError(.codec) { _ = try await p.branch.callJSON("add", Data("[1,2]".utf8)) }
        #expect(undecodable?.message.contains("cannot decode") == true)
        await p.close()
    }

    @Test func aFrameOverTheLimitIsRefusedBeforeSending() async throws {
        var options = testOptions()
        options.maxFrameSize = 1024
        let p = try await pair("unix", options: options)
        _ = await expectRPCError(.frameTooLarge) {
            _ = try await p.branch.call(Echo.self, String(repeating: "x", count: 2000))
        }
        #expect(try await p.branch.call(Echo.self, "small") == "small")
        await p.close()
    }

    @Test func callsWhileNotConnectedFailWith30002() async throws {
        let branch = RPCBranch(id: "alone", options: testOptions(), logger: quiet)
        _ = await expectRPCError(.notConnected) { _ = try await branch.call(Add.self, .init(a: 1, b: 1)) }
        _ = await expectRPCError(.notConnected) { try await branch.connect(to: .unix(socketPath())) }
        await branch.close()
    }

    @Test func heartbeatsKeepAnIdleConnectionAlive() async throws {
        var options = testOptions()
        options.heartbeatInterval = .milliseconds(20)
        let p = try await pair("memory", options: options)
        // Idle for many intervals: pings and pongs keep it alive.
        try await Task.sleep(for: .milliseconds(300))
        #expect(p.branch.isConnected)
        #expect(try await p.branch.call(Add.self, .init(a: 1, b: 1)) == 2)
        await p.close()
    }

    final class SilentRouter: RPCRouter {
        func route(_ call: InboundCall) -> RPCRoute { .refused(RPCError(.noSuchAction, "silent")) }
        func notice(_ name: String, body: ByteBuffer, from connection: RPCConnection) {}
        func handshake(_ frame: Frame, from connection: RPCConnection) {}
    }

    @Test func aSilentPeerIsDroppedAfterThreeHeartbeatIntervals() async throws {
        var options = testOptions()
        options.heartbeatInterval = .milliseconds(20)
        // The far end of the pair is never started: it takes frames and never answers a ping.
        let (near, far) = InProcessLink.pair(name: "silent", maxFrameSize: options.maxFrameSize, on: Transport.group.next())
        let lines = LineCollector()
        let connection = RPCConnection(link: near, options: options, router: SilentRouter(), logger: lines.logger("octopus.rpc"))
        connection.start()
        let pending = Task { try await connection.callRaw(action: "x", target: nil, body: ByteBuffer(), timeout: .seconds(600)) }
        let reason = await connection.closed()
        #expect(reason.code == .disconnected)
        #expect(reason.message.contains("(heartbeat)"), "\(reason)")
        #expect(lines.count("closing the connection: no frame for") == 1)
        do {
            _ = try await pending.value
            Issue.record("the pending call returned")
        } catch let error as RPCError {
            #expect(error.code == .disconnected)
        }
        withExtendedLifetime(far) {}
    }
}
