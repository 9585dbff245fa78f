import Foundation
import OctopusSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Reads a child's stderr on a thread of its own: every byte goes on to the master's stderr as it comes (so a
/// terminal or the daemon's log sees it), and the last lines are kept for the message that says why it crashed.
final class StderrTail: Sendable {
    private let lines = Mutex<[String]>([])
    private let limit: Int
    private let done = ResumeOnce<Void>()
    private let finished: Task<Void, Never>

    init(reading fd: Int32, limit: Int = 20) {
        self.limit = limit
        let done = self.done
        finished = Task { await done.value }
        let thread = Thread { [self] in
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 8192)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                buffer.withUnsafeBytes { raw in
                    var offset = 0
                    while offset < n {
                        let written = write(2, raw.baseAddress! + offset, n - offset)
                        if written <= 0 { break }
                        offset += written
                    }
                }
                pending.append(contentsOf: buffer[0..<n])
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    keep(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            }
            if !pending.isEmpty { keep(String(decoding: pending, as: UTF8.self)) }
            close(fd)
            done.resume(())
        }
        thread.stackSize = 128 * 1024
        thread.start()
    }

    private func keep(_ line: String) {
        lines.withLock { lines in
            lines.append(line)
            if lines.count > limit { lines.removeFirst(lines.count - limit) }
        }
    }

    /// The last lines read so far.
    var last: [String] { lines.withLock { $0 } }

    /// The last lines once the pipe has ended (every writer gone), waiting at most `limit`.
    func lastLines(waitingAtMost limit: Duration) async -> [String] {
        let finished = self.finished
        _ = await value(of: { await finished.value }, orNilAfter: limit)
        return last
    }
}
