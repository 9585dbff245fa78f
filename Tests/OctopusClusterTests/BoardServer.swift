import Foundation
import Synchronization
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The remote service behind the cluster-client tests (the ClusterFixture's `BoardConnection` talks to it): a Unix
/// socket server with a line protocol — `SUB KEY` (answered `OK`; refused with `NO …` the first 3 times for a key that
/// begins with "broken"), `UNSUB KEY`, `PUB KEY VALUE` (answered `OK`, then `VAL KEY VALUE` to every connection
/// subscribed to KEY). It records what the real clients did: connections, subscribes and unsubscribes, so a test can
/// show that N processes share one connection and one subscription.
final class BoardServer: @unchecked Sendable {
    let path: String
    private let listener: Int32

    struct Record {
        var connections = 0
        var open: Set<Int32> = []
        var subscribers: [String: [Int32: Int]] = [:]
        var events: [String] = []
        var refusals: [String: Int] = [:]
        var stopped = false
    }

    private let record = Mutex(Record())
    /// Held by whatever writes to, shuts down or closes a connection's descriptor: a number closed by its reader
    /// thread may be given at once to another socket of this process, which a late write must not reach.
    private let writeLock = NSLock()

    init(path: String) throws {
        self.path = path
        unlink(path)
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let result = withUnixAddress(path) { bind(listener, $0, $1) }
        guard result == 0, listen(listener, 64) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let thread = Thread { [self] in acceptLoop() }
        thread.stackSize = 128 * 1024
        thread.start()
    }

    /// Stops accepting and closes every connection (their reader threads end).
    func stop() {
        writeLock.lock()
        defer { writeLock.unlock() }
        let open = record.withLock { record -> Set<Int32>? in
            if record.stopped { return nil }
            record.stopped = true
            return record.open
        }
        guard let open else { return }
        // The accept thread closes the listener once its accept fails, so it is shut down only once.
        shutdown(listener, Int32(SHUT_RDWR))
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        unlink(path)
    }

    deinit { stop() }

    /// Connections made so far, and open now.
    var connections: (total: Int, open: Int) { record.withLock { ($0.connections, $0.open.count) } }

    /// Every "connect", "close", "sub KEY", "unsub KEY" and "pub KEY VALUE", in order.
    var events: [String] { record.withLock { $0.events } }

    func count(_ event: String) -> Int { events.filter { $0 == event }.count }

    /// Connections subscribed to `key` now.
    func subscriberCount(_ key: String) -> Int { record.withLock { ($0.subscribers[key] ?? [:]).count } }

    /// Publishes as a third party would (not through any cluster client).
    func publish(_ key: String, _ value: String) {
        let targets = record.withLock { record in
            record.events.append("pub \(key) \(value)")
            return Array((record.subscribers[key] ?? [:]).keys)
        }
        for fd in targets { send(fd, "VAL \(key) \(value)") }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                close(listener)
                return
            }
            record.withLock { record in
                record.connections += 1
                record.open.insert(fd)
                record.events.append("connect")
            }
            let thread = Thread { [self] in serve(fd) }
            thread.stackSize = 128 * 1024
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        reading: while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            pending.append(contentsOf: buffer[0..<n])
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                handle(line, from: fd)
            }
        }
        writeLock.lock()
        record.withLock { record in
            record.open.remove(fd)
            for key in record.subscribers.keys { record.subscribers[key]?[fd] = nil }
            record.events.append("close")
        }
        close(fd)
        writeLock.unlock()
    }

    private func handle(_ line: String, from fd: Int32) {
        let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
        switch (parts.first, parts.count) {
        case ("SUB", 2):
            let key = parts[1]
            let refused = record.withLock { record -> Bool in
                if key.hasPrefix("broken"), record.refusals[key, default: 0] < 3 {
                    record.refusals[key, default: 0] += 1
                    record.events.append("refused \(key)")
                    return true
                }
                record.subscribers[key, default: [:]][fd, default: 0] += 1
                record.events.append("sub \(key)")
                return false
            }
            send(fd, refused ? "NO \(key) is not available yet" : "OK")
        case ("UNSUB", 2):
            let key = parts[1]
            record.withLock { record in
                record.events.append("unsub \(key)")
                if let count = record.subscribers[key]?[fd] {
                    record.subscribers[key]?[fd] = count > 1 ? count - 1 : nil
                }
            }
        case ("PUB", 3):
            publish(parts[1], parts[2])
            send(fd, "OK")
        default:
            send(fd, "NO cannot read \(line)")
        }
    }

    private func send(_ fd: Int32, _ line: String) {
        let bytes = Array((line + "\n").utf8)
        writeLock.lock()
        defer { writeLock.unlock() }
        guard record.withLock({ $0.open.contains(fd) }) else { return }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}
