import Dispatch
import Foundation
import Logging
import NIOCore
public import OctopusLog
import OctopusRPC
import Synchronization

/// Rotation in a cluster: the agent owns every rotating file; the master and the workers follow (see
/// `RotationCoordination`). A logging system is made before its process has joined the cluster, so its coordination
/// talks through this relay, which is connected once the process has.
///
/// A follower's roll request goes to the master, which hands it to the agent. Right after a roll the agent asks the
/// master, which has every other process reopen the file and answers once each has (or is gone, or 10 s have passed,
/// which it logs); only then does the agent archive the rolled file.
public final class RotationRelay: Sendable {
    private struct State {
        var branch: RPCBranch?
        /// Master: who hears roll requests and serves the barrier.
        var masterSide: (@Sendable (String) -> Void)?
    }

    private let state = Mutex(State())
    private let connected = DispatchSemaphore(value: 0)
    private let log: Mutex<Logger?> = Mutex(nil)

    public init() {}

    /// The agent's coordination: it rolls, tells the others at once, and archives once they have reopened.
    public var owner: RotationCoordination {
        .owner { [self] file in announce(file) }
    }

    /// The master's and the workers' coordination: they ask for rolls.
    public var follower: RotationCoordination {
        .follower { [self] file in requestRoll(file) }
    }

    /// The coordination of a process of `role`.
    public func coordination(for role: ClusterRole) -> RotationCoordination {
        role == .agent ? owner : follower
    }

    func connect(_ branch: RPCBranch, logger: Logger) {
        log.withLock { $0 = logger }
        state.withLock { $0.branch = branch }
        connected.signal()
    }

    /// Master: roll requests go to `forward` (which hands them to the agent).
    func connectMaster(_ forward: @escaping @Sendable (String) -> Void) {
        state.withLock { $0.masterSide = forward }
    }

    private func requestRoll(_ file: String) {
        let (branch, masterSide) = state.withLock { ($0.branch, $0.masterSide) }
        if let masterSide { return masterSide(file) }
        try? branch?.send(ClusterMessage.rollRequest, body: ByteBuffer(string: file))
    }

    /// On the agent's writer thread, right after a roll: asks the master (without waiting) to have every other
    /// process reopen `file`; the returned wait, on the maintenance thread, returns once the master says they have.
    private func announce(_ file: String) -> @Sendable () -> Void {
        let done = DispatchSemaphore(value: 0)
        let log = self.log.withLock { $0 }
        Task { [self] in
            // A roll at start-up (a file left from an earlier period) may come before the agent has joined.
            var branch = state.withLock { $0.branch }
            if branch == nil {
                let joined = await Task.detached { [connected] in
                    if connected.wait(timeout: .now() + 30) == .timedOut { return false }
                    connected.signal()
                    return true
                }.value
                branch = joined ? state.withLock { $0.branch } : nil
            }
            if let branch {
                do {
                    _ = try await branch.call(RollBarrier.self, file, timeout: .seconds(30))
                } catch {
                    log?.warning(
                        "rolled \(file): the master did not confirm that every process reopened it (\(error)); archiving it anyway")
                }
            }
            done.signal()
        }
        return { done.wait() }
    }
}
