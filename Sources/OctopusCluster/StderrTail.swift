import Foundation
import OctopusSystem
import Synchronization

/// Reads a child's stderr on a thread of its own: every byte goes on to the master's stderr as it comes (so a
/// terminal or the daemon's log sees it), and the last lines are kept for the message that says why it crashed.
final class StderrTail: Sendable {
    private final class Ring: Sendable {
        let lines = Mutex<[String]>([])
    }

    private let ring = Ring()
    private let finished: Task<Void, Never>

    init(reading fd: Int32, limit: Int = 20) {
        let ring = self.ring
        finished = LineReader.start(fd, passThrough: 2) { line in
            ring.lines.withLock { lines in
                lines.append(line)
                if lines.count > limit { lines.removeFirst(lines.count - limit) }
            }
        }
    }

    /// The last lines read so far.
    var last: [String] { ring.lines.withLock { $0 } }

    /// The last lines once the pipe has ended (every writer gone), waiting at most `limit`.
    func lastLines(waitingAtMost limit: Duration) async -> [String] {
        let finished = self.finished
        _ = await value(of: { await finished.value }, orNilAfter: limit)
        return last
    }
}
