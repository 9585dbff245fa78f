// Helpers shared by the test targets.
public import Foundation
public import Logging
import Synchronization
public import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Collects every log line, from any logger it makes, with its label and level.
public final class LineCollector: Sendable {
    private let lines = Mutex<[(label: String, level: Logger.Level, message: String)]>([])

    public init() {}

    public func logger(_ label: String) -> Logger {
        Logger(label: label) { label in Handler(label: label, collector: self) }
    }

    public var messages: [String] { lines.withLock { $0.map(\.message) } }
    public func messages(label: String) -> [String] {
        lines.withLock { $0.filter { $0.label == label }.map(\.message) }
    }
    public func count(_ fragment: String) -> Int { messages.filter { $0.contains(fragment) }.count }

    fileprivate func append(_ label: String, _ level: Logger.Level, _ message: String) {
        lines.withLock { $0.append((label, level, message)) }
    }

    struct Handler: LogHandler {
        let label: String
        let collector: LineCollector
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            collector.append(label, event.level, event.message.description)
        }
    }
}

/// Waits (polling, without depending on how long it takes) until `condition` holds; fails after a generous limit.
public func eventually(
    _ what: String = "condition", within limit: Duration = .seconds(60), sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () -> Bool
) async {
    let start = ContinuousClock.now
    while !condition() {
        if ContinuousClock.now - start > limit {
            Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
            return
        }
        try? await Task.sleep(for: .milliseconds(2))
    }
}

/// Calls `body` with the `sockaddr` of a Unix socket path and its length (for connect and bind).
public func withUnixAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
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
public final class RawSocket: @unchecked Sendable {
    public let fd: Int32

    public init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let result = withUnixAddress(path) { Glibc.connect(fd, $0, $1) }
        if result != 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    public func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Ends the sending side (the peer reads end of stream).
    public func finishSending() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads until the peer closes; true when it did (false on the 20 s receive timeout).
    public func readUntilClosed() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }
}

/// A Unix socket that listens and never answers (connections complete in the kernel's backlog).
public final class RawListener {
    public let fd: Int32
    public let path: String

    public init(path: String) throws {
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

/// Runs blocking work (socket reads, a fuzz loop, waiting for a child process, a long loop of logging calls) on its own
/// thread, not on the cooperative pool, whose few threads (two on a 2-CPU machine) the code under test and every test
/// running beside need.
public func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

/// ``onThread(_:)`` for work that throws.
public func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result(catching: body)) }.start()
    }
}
