import Foundation
import Logging
import OctopusRPC
import OctopusSystem

#if canImport(Glibc)
import Glibc
#endif

/// The client side of the control socket: what `octopus status` and `octopus stop` ask a running service.
public enum ClusterControl {
    /// What a stop did.
    public struct StopReport: Sendable {
        public var masterPID: Int32
        /// Processes of the service still alive when the timeout passed (empty: everything is gone).
        public var stillAlive: [String]
        /// Whether the master was signalled directly because its control socket did not answer.
        public var signalled: Bool
    }

    /// Whether a service runs with this run directory (a live process holds its pid file's lock).
    public static func isRunning(runDirectory: String) -> Bool {
        PidFile.holder(RunDirectory(path: runDirectory).pidFile) != nil
    }

    /// The state of the service whose run directory is `runDirectory`. Throws `.notRunning` when nothing holds its
    /// pid file, `.control` when the master does not answer.
    public static func status(runDirectory: String, timeout: Duration = .seconds(5)) async throws(ClusterError) -> ClusterStatus {
        let directory = RunDirectory(path: runDirectory)
        guard let pid = PidFile.holder(directory.pidFile) else {
            throw ClusterError(.notRunning, "octopus is not running (no live process holds \(directory.pidFile))")
        }
        do {
            return try await withControl(directory, handshakeTimeout: timeout) { branch in
                try await branch.call(ControlStatus.self, 0, timeout: timeout)
            }
        } catch {
            throw ClusterError(.control, "the master (pid \(pid)) did not answer on \(directory.controlSocket): \(error)")
        }
    }

    /// Runs a task now in the running service, through its agent, as the task's type says (one worker, or every
    /// worker), and returns the outcome and each worker's.
    public static func run(runDirectory: String, task: String) async throws(ClusterError) -> RunNowResult {
        let directory = RunDirectory(path: runDirectory)
        guard let pid = PidFile.holder(directory.pidFile) else {
            throw ClusterError(.notRunning, "octopus is not running (no live process holds \(directory.pidFile))")
        }
        do {
            return try await withControl(directory) { branch in
                try await branch.call(ControlRun.self, task, timeout: .seconds(7 * 24 * 3600))
            }
        } catch {
            throw ClusterError(.control, "the master (pid \(pid)) did not answer on \(directory.controlSocket): \(error)")
        }
    }

    /// Asks the running service to stop gracefully and waits until every process of it is gone, up to `timeout`. A
    /// master whose control socket does not answer gets SIGTERM (it is the process holding the pid file's lock, so a
    /// reused pid is never signalled).
    public static func stop(runDirectory: String, timeout: Duration) async throws(ClusterError) -> StopReport {
        let directory = RunDirectory(path: runDirectory)
        guard let masterPID = PidFile.holder(directory.pidFile) else {
            throw ClusterError(.notRunning, "octopus is not running (no live process holds \(directory.pidFile))")
        }
        // Who to wait for: every process, named by pid and start time (a pid reused meanwhile is not waited for).
        var watched: [(name: String, pid: Int32, start: UInt64?)] = [("master (pid \(masterPID))", masterPID, ProcessTable.startTime(masterPID))]
        if let status = try? await self.status(runDirectory: runDirectory, timeout: .seconds(2)) {
            for process in status.processes {
                let identity = ProcessIdentity(role: process.role, workerID: process.workerID, pid: process.pid)
                watched.append((identity.description, process.pid, ProcessTable.startTime(process.pid)))
            }
        }
        var signalled = false
        do {
            _ = try await withControl(directory) { branch in
                try await branch.call(ControlStop.self, 0, timeout: .seconds(5))
            }
        } catch {
            kill(masterPID, SIGTERM)
            signalled = true
        }
        let deadline = ContinuousClock.now + timeout
        var alive = watched
        while true {
            alive = alive.filter { process in process.start.map { ProcessTable.isRunning(process.pid, startTime: $0) } ?? false }
            if alive.isEmpty || ContinuousClock.now >= deadline { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return StopReport(masterPID: masterPID, stillAlive: alive.map(\.name), signalled: signalled)
    }

    private static func withControl<T: Sendable>(
        _ directory: RunDirectory, handshakeTimeout: Duration = .seconds(5), _ body: (RPCBranch) async throws -> T
    ) async throws -> T {
        var options = RPCOptions()
        options.heartbeatInterval = nil
        options.handshakeTimeout = handshakeTimeout
        // Unique per connection: the master may not have seen the previous one of this process close yet.
        let branch = RPCBranch(
            id: "control-\(getpid())-\(UInt32.random(in: 0...UInt32.max))", options: options, logger: Logger(label: "octopus.control") { _ in SwiftLogNoOpLogHandler() })
        do {
            try await branch.connect(to: .unix(directory.controlSocket))
            let result = try await body(branch)
            await branch.close()
            return result
        } catch {
            await branch.close()
            throw error
        }
    }
}
