import Foundation
import NIOCore
import Synchronization
import Testing
import TestSupport

@testable import OctopusRPC

/// Bad bytes on one connection close that connection, with a logged reason; the master and a healthy branch
/// calling it all along are unaffected.
@Suite struct BadInputTests {
    func header(magic: UInt16 = Frame.magic, version: UInt8 = Frame.version, kind: UInt8 = 1, bodyLength: UInt32 = 0)
        -> [UInt8]
    {
        var buffer = ByteBuffer()
        buffer.writeMultipleIntegers(magic, version, kind, UInt16(0), UInt16(0), UInt64(1), UInt32(0), UInt32(0), bodyLength)
        return Array(buffer.readableBytesView)
    }

    @Test func eachBadInputClosesOnlyItsConnection() async throws {
        let path = socketPath()
        let lines = LineCollector()
        let master = RPCMaster(
            handlers: { let h = RPCHandlers(); h.register(Add.self) { $0.a + $0.b }; return h }(), options: testOptions(),
            logger: lines.logger("octopus.rpc"))
        try await master.listen(.unix(path))
        let healthy = RPCBranch(id: "healthy", options: testOptions(), logger: quiet)
        let events = EventLog(healthy.events)
        try await healthy.connect(to: .unix(path))

        // The healthy branch calls the whole time.
        let stop = Atomic<Bool>(false)
        let calls = Task {
            var n = 0
            while !stop.load(ordering: .relaxed) {
                let sum = try await healthy.call(Add.self, .init(a: n, b: 1))
                #expect(sum == n + 1)
                n += 1
            }
            return n
        }

        var garbage = SplitMix(seed: 42)
        var randomBytes = (0..<256).map { _ in UInt8(truncatingIfNeeded: garbage.next()) }
        randomBytes[0] = 0x17
        var handshake = ByteBuffer()
        Frame(kind: .handshake, id: 0, body: ByteBuffer(string: "not json {")).write(to: &handshake)

        let cases: [(name: String, bytes: [UInt8], finish: Bool, logged: String)] = [
            ("truncated header", Array(header().prefix(11)), true, "the stream ended inside a frame (11 bytes of it)"),
            ("wrong magic", header(magic: 0x4854), false, "bad magic 0x4854"),
            ("wrong version", header(version: 9), false, "unsupported protocol version 9"),
            ("length over the limit", header(bodyLength: 100 << 20), false, "is over the limit of 16777216"),
            ("random bytes", randomBytes, false, "bad magic"),
            ("handshake body not JSON", Array(handshake.readableBytesView), false, "the handshake is not a bind message"),
        ]
        for bad in cases {
            let before = lines.count(bad.logged)
            let raw = try RawSocket(path: path)
            raw.send(bad.bytes)
            if bad.finish { raw.finishSending() }
            #expect(await onThread { raw.readUntilClosed() }, "\(bad.name): the connection is closed")
            await eventually("\(bad.name): the reason is logged") { lines.count(bad.logged) > before }
            #expect(try await healthy.call(Add.self, .init(a: 1, b: 1)) == 2, "\(bad.name): healthy calls go on")
        }
        stop.store(true, ordering: .relaxed)
        let made = try await calls.value
        #expect(made > 0)
        #expect(healthy.isConnected)
        #expect(!events.all.contains { if case .disconnected = $0 { true } else { false } })
        #expect(master.directory.keys.sorted() == ["healthy", "master"])
        await healthy.close()
        await master.close()
    }

    @Test func aRefusalAnswersThenClosesOnlyThatConnection() async throws {
        let path = socketPath()
        let handlers = RPCHandlers()
        handlers.register(Add.self) { input in
            if input.a < 0 { throw RPCRefusal(RPCError(.staleTerm, "not from this term")) }
            return input.a + input.b
        }
        let master = RPCMaster(handlers: handlers, options: testOptions(), logger: quiet)
        try await master.listen(.unix(path))
        let refused = RPCBranch(id: "refused", options: testOptions(), logger: quiet)
        let refusedEvents = EventLog(refused.events)
        let healthy = RPCBranch(id: "healthy", options: testOptions(), logger: quiet)
        let healthyEvents = EventLog(healthy.events)
        try await refused.connect(to: .unix(path))
        try await healthy.connect(to: .unix(path))
        let error = await expectRPCError(.staleTerm) { _ = try await refused.call(Add.self, .init(a: -1, b: 0)) }
        #expect(error?.message == "not from this term", "the caller gets the refusal's own error")
        await eventually("the refused connection is closed") {
            refusedEvents.count { if case .disconnected = $0 { true } else { false } } == 1
        }
        #expect(try await healthy.call(Add.self, .init(a: 2, b: 2)) == 4)
        #expect(!healthyEvents.all.contains { if case .disconnected = $0 { true } else { false } })
        await refused.close()
        await healthy.close()
        await master.close()
    }
}
