// The fixture's real long connection: a line protocol over a Unix socket to the test's board server (what a registry
// or a configuration centre is to an application). Requests are answered in order, "OK" or "NO TEXT"; values come
// as they are published:
//
//   SUB KEY    → OK, then "VAL KEY VALUE" lines      UNSUB KEY (no answer)      PUB KEY VALUE → OK
//
// Its methods (for `invoke`) are computed in the leader: add, slow (waits), fail (throws).
import Foundation
import Octopus
import TestSupport
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct AddAction: RPCAction {
    struct Input: Codable, Sendable { var a, b: Int }
    typealias Output = Int
    static let name = "add"
}

struct SlowAction: RPCAction {
    typealias Input = Int
    typealias Output = Int
    static let name = "slow"
}

struct FailAction: RPCAction {
    typealias Input = String
    typealias Output = String
    static let name = "fail"
}

struct BoardError: Error, CustomStringConvertible {
    var description: String
}

final class BoardConnection: SharedConnection, @unchecked Sendable {
    typealias Value = String
    typealias Values = AsyncThrowingStream<String, any Error>

    private let fd: Int32
    /// Held while a request is queued and written, so answers come back in the order of `pending`.
    private let writing = NSLock()
    private struct State {
        var pending: [CheckedContinuation<Void, any Error>] = []
        var topics: [String: (id: Int, continuation: Values.Continuation)] = [:]
        var nextID = 0
        var broken = false
    }
    private let state = Mutex(State())

    static func connect(_ path: String) throws -> BoardConnection {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let result = withUnixAddress(path) { Glibc.connect(fd, $0, $1) }
        guard result == 0 else {
            Glibc.close(fd)
            throw BoardError(description: "cannot connect to the board at \(path): errno \(errno)")
        }
        return BoardConnection(fd: fd)
    }

    private init(fd: Int32) {
        self.fd = fd
        let thread = Thread { [self] in readLines() }
        thread.stackSize = 128 * 1024
        thread.start()
    }

    private func readLines() {
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            pending.append(contentsOf: buffer[0..<n])
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                handle(String(decoding: pending[..<newline], as: UTF8.self))
                pending.removeSubrange(...newline)
            }
        }
        Glibc.close(fd)
        let (waiting, topics) = state.withLock { state in
            state.broken = true
            defer {
                state.pending = []
                state.topics = [:]
            }
            return (state.pending, state.topics.values.map(\.continuation))
        }
        let lost = BoardError(description: "the board connection closed")
        for continuation in waiting { continuation.resume(throwing: lost) }
        for topic in topics { topic.finish(throwing: lost) }
    }

    private func handle(_ line: String) {
        if line.hasPrefix("VAL ") {
            let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
            guard parts.count == 3 else { return }
            _ = state.withLock { $0.topics[parts[1]] }?.continuation.yield(parts[2])
            return
        }
        let waiter = state.withLock { state in state.pending.isEmpty ? nil : state.pending.removeFirst() }
        if line == "OK" {
            waiter?.resume()
        } else {
            waiter?.resume(throwing: BoardError(description: String(line.dropFirst(3))))
        }
    }

    private func request(_ line: String) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            writing.lock()
            defer { writing.unlock() }
            let queued = state.withLock { state -> Bool in
                guard !state.broken else { return false }
                state.pending.append(continuation)
                return true
            }
            guard queued else {
                continuation.resume(throwing: BoardError(description: "the board connection closed"))
                return
            }
            send(line)
        }
    }

    private func send(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }

    func subscribe(_ key: String) async throws -> Values {
        let (stream, continuation) = Values.makeStream()
        let id = state.withLock { state in
            state.nextID += 1
            state.topics[key] = (state.nextID, continuation)
            return state.nextID
        }
        do {
            try await request("SUB \(key)")
        } catch {
            state.withLock { state in if state.topics[key]?.id == id { state.topics[key] = nil } }
            throw error
        }
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            let current = self.state.withLock { state -> Bool in
                guard state.topics[key]?.id == id else { return false }
                state.topics[key] = nil
                return !state.broken
            }
            if current {
                self.writing.lock()
                self.send("UNSUB \(key)")
                self.writing.unlock()
            }
        }
        return stream
    }

    func publish(_ value: String, to key: String) async throws {
        try await request("PUB \(key) \(value)")
    }

    func methods(_ handlers: RPCHandlers) {
        handlers.register(AddAction.self) { $0.a + $0.b }
        handlers.register(SlowAction.self) { ms in
            try await Task.sleep(for: .milliseconds(ms))
            return ms
        }
        handlers.register(FailAction.self) { text in throw BoardError(description: "the real client failed: \(text)") }
    }

    func close() async {
        shutdown(fd, Int32(SHUT_RDWR))
    }
}
