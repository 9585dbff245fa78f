import Foundation
import Logging
import Synchronization
import Testing

@testable import OctopusRPC

#if canImport(Glibc)
import Glibc
#endif

struct Add: RPCAction {
    struct Input: Codable { var a, b: Int }
    typealias Output = Int
    static let name = "add"
}

struct Echo: RPCAction {
    typealias Input = String
    typealias Output = String
    static let name = "echo"
}

/// Waits until released or cancelled; reports both.
struct Block: RPCAction {
    typealias Input = Int
    typealias Output = Int
    static let name = "block"
}

struct Fail: RPCAction {
    typealias Input = String
    typealias Output = String
    static let name = "fail"
}

struct HandlerFailure: Error, CustomStringConvertible {
    var text: String
    var description: String { "handler failure: \(text)" }
}

/// Counts handler entries and cancellations; handlers of `Block` wait on it until released.
final class Gate: Sendable {
    private let state = Mutex((entered: 0, cancelled: 0, released: false))

    var entered: Int { state.withLock { $0.entered } }
    var cancelled: Int { state.withLock { $0.cancelled } }
    func release() { state.withLock { $0.released = true } }

    func pass() async throws {
        state.withLock { $0.entered += 1 }
        while !state.withLock({ $0.released }) {
            do {
                try await Task.sleep(for: .milliseconds(2))
            } catch {
                state.withLock { $0.cancelled += 1 }
                throw error
            }
        }
    }
}

private let socketCounter = Atomic<Int>(0)

/// A fresh Unix socket path (short: sun_path holds 108 bytes).
func socketPath() -> String {
    "/tmp/octo-rpc-\(getpid())-\(socketCounter.wrappingAdd(1, ordering: .relaxed).oldValue).sock"
}

/// A fresh in-process address.
func memoryAddress() -> RPCAddress {
    .inProcess("test-\(socketCounter.wrappingAdd(1, ordering: .relaxed).oldValue)")
}

/// Test options: short reconnection delays, heartbeats off unless asked, handshake and call timeouts no busy machine
/// reaches.
func testOptions(secret: String? = nil) -> RPCOptions {
    var options = RPCOptions(secret: secret)
    options.reconnectMinimumDelay = .milliseconds(10)
    options.reconnectMaximumDelay = .milliseconds(200)
    options.heartbeatInterval = nil
    // Generous: a handshake or a call must not time out because the machine is busy (the tests of timeouts set
    // their own).
    options.handshakeTimeout = .seconds(60)
    options.defaultTimeout = .seconds(60)
    return options
}

@discardableResult
func expectRPCError(
    _ code: RPCError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> RPCError? {
    do {
        try await body()
        Issue.record("expected RPC error \(code.rawValue), got success", sourceLocation: sourceLocation)
        return nil
    } catch let error as RPCError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected RPC error \(code.rawValue), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Tests that do not look at log lines keep them off the test output.
let quiet = Logger(label: "octopus.rpc") { _ in SwiftLogNoOpLogHandler() }

