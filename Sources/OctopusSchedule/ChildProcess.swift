import CShims
import Foundation
import OctopusSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Told of every process group a `command` task starts, before its program runs, and when it has ended. A process
/// model records the groups somewhere that outlives this process, so that they are ended even when this process is
/// killed (see `OctopusCluster`).
public protocol ProcessGroupObserver: Sendable {
    /// Returns once the group is recorded; a throw abandons the start (the program never runs).
    func groupStarted(_ pgid: Int32) async throws
    func groupEnded(_ pgid: Int32)
}

/// Where `command` tasks report their process groups (set once by a process model; none by default).
public enum CommandProcessGroups {
    private static let current = Mutex<(any ProcessGroupObserver)?>(nil)

    public static var observer: (any ProcessGroupObserver)? {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }
}

/// A program started in a process group of its own, every signal at its default and none blocked (a service that
/// ignores or blocks SIGTERM for its own handling must not pass that on), stdin from /dev/null and stdout/stderr
/// into pipes. It gets SIGKILL when this process ends, and its group is registered (in this process, for the
/// parent-death handler, and with the ``CommandProcessGroups`` observer) before the program runs, so that nothing it
/// starts outlives the service.
struct ChildProcess: Sendable {
    let process: RunningProcess
    /// Read ends of the child's stdout and stderr; the reader closes them.
    let stdout: Int32
    let stderr: Int32

    var pid: pid_t { process.pid }

    /// Resolved once the child has been reaped; its group is unregistered by then.
    var exit: ExitStatus {
        get async { await process.exit.value }
    }

    /// Signals the child's whole group (a shell and what it started), unless the child is already reaped.
    func signalGroup(_ signal: Int32) {
        process.signalGroup(signal)
    }

    static func spawn(
        executable: String, arguments: [String], environment: [String: String], directory: String?
    ) async throws(CommandFailure) -> ChildProcess {
        var out: [Int32] = [0, 0]
        var err: [Int32] = [0, 0]
        guard octopus_pipe_cloexec(&out) == 0 else { throw CommandFailure(message: "pipe: \(String(cString: strerror(errno)))") }
        guard octopus_pipe_cloexec(&err) == 0 else {
            close(out[0])
            close(out[1])
            throw CommandFailure(message: "pipe: \(String(cString: strerror(errno)))")
        }
        var spec = ProcessSpec(
            executable: executable, arguments: arguments, environment: environment, descriptors: [-1, out[1], err[1]],
            directory: directory)
        spec.processGroup = true
        spec.deathSignal = SIGKILL
        let held: HeldProcess
        do {
            held = try Spawner.spawnHeld(spec)
        } catch {
            for fd in out + err { close(fd) }
            throw CommandFailure(message: error.description)
        }
        close(out[1])
        close(err[1])
        let pgid = held.pid
        ProcessGroups.add(pgid)
        let observer = CommandProcessGroups.observer
        var refusal: (any Error)?
        if let observer {
            do { try await observer.groupStarted(pgid) } catch { refusal = error }
        }
        let running = held.process
        if let refusal {
            _ = held.abandon()
            Self.forget(running, pgid: pgid, observer: observer)
            close(out[0])
            close(err[0])
            throw CommandFailure(message: "cannot record the command's process group: \(refusal)")
        }
        do {
            _ = try held.release()
        } catch {
            Self.forget(running, pgid: pgid, observer: observer)
            close(out[0])
            close(err[0])
            throw CommandFailure(message: error.description)
        }
        Self.forget(running, pgid: pgid, observer: observer)
        return ChildProcess(process: running, stdout: out[0], stderr: err[0])
    }

    /// Unregisters the group once the child has been reaped.
    private static func forget(_ process: RunningProcess, pgid: pid_t, observer: (any ProcessGroupObserver)?) {
        Task {
            _ = await process.exit.value
            ProcessGroups.remove(pgid)
            observer?.groupEnded(pgid)
        }
    }
}
