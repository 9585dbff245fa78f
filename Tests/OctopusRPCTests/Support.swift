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

/// Test options: short reconnection delays, heartbeats off unless asked.
func testOptions(secret: String? = nil) -> RPCOptions {
    var options = RPCOptions(secret: secret)
    options.reconnectMinimumDelay = .milliseconds(10)
    options.reconnectMaximumDelay = .milliseconds(200)
    options.heartbeatInterval = nil
    return options
}

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

/// Calls `body` with the `sockaddr` of a Unix socket path and its length (for connect and bind).
func withUnixAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        let bytes = Array(path.utf8)
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
}

/// A plain blocking Unix-socket client, for sending bytes that no well-behaved endpoint would.
final class RawSocket: @unchecked Sendable {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let result = withUnixAddress(path) { Glibc.connect(fd, $0, $1) }
        if result != 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Ends the sending side (the peer reads end of stream).
    func finishSending() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads until the peer closes; true when it did (false on the 20 s receive timeout).
    func readUntilClosed() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }
}

/// A Unix socket that listens and never answers (connections complete in the kernel's backlog).
final class RawListener {
    let fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let result = withUnixAddress(path) { bind(fd, $0, $1) }
        if result != 0 || listen(fd, 8) != 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    deinit {
        close(fd)
        unlink(path)
    }
}

/// Tests that do not look at log lines keep them off the test output.
let quiet = Logger(label: "octopus.rpc") { _ in SwiftLogNoOpLogHandler() }

/// Runs blocking work (socket reads, the fuzz loop) on its own thread, not on the concurrency pool that the
/// endpoints under test need.
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}
