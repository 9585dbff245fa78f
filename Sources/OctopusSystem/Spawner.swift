import CShims
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How a process ended.
package enum ExitStatus: Sendable, Hashable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    package var description: String {
        switch self {
        case .exited(let code): "exit status \(code)"
        case .signalled(let signal): "signal \(signal) (\(signalName(signal)))"
        }
    }

    package var isSuccess: Bool { self == .exited(0) }
}

/// The usual name of a signal number (`SIGTERM`), for log lines.
package func signalName(_ signal: Int32) -> String {
    switch signal {
    case SIGHUP: "SIGHUP"
    case SIGINT: "SIGINT"
    case SIGQUIT: "SIGQUIT"
    case SIGILL: "SIGILL"
    case SIGTRAP: "SIGTRAP"
    case SIGABRT: "SIGABRT"
    case SIGBUS: "SIGBUS"
    case SIGFPE: "SIGFPE"
    case SIGKILL: "SIGKILL"
    case SIGUSR1: "SIGUSR1"
    case SIGSEGV: "SIGSEGV"
    case SIGUSR2: "SIGUSR2"
    case SIGPIPE: "SIGPIPE"
    case SIGALRM: "SIGALRM"
    case SIGTERM: "SIGTERM"
    default: signal == octopus_parent_death_signal() ? "parent-death signal" : "signal \(signal)"
    }
}

/// Why a program could not be started.
package struct SpawnError: Error, Sendable, CustomStringConvertible {
    package var executable: String
    package var errno: Int32

    package var description: String {
        "cannot start \"\(executable)\": \(String(cString: strerror(errno)))"
    }
}

/// What to start and how.
package struct ProcessSpec: Sendable {
    /// The program's path (no `PATH` lookup here).
    package var executable: String
    /// The whole argument vector, `argv[0]` included.
    package var arguments: [String]
    package var environment: [String: String]
    /// `descriptors[i]` becomes descriptor `i` of the child; `-1` is /dev/null for 0–2 and nothing above. Every other
    /// descriptor is closed in the child.
    package var descriptors: [Int32]
    package var directory: String?
    /// The child leads a process group of its own.
    package var processGroup = false
    /// The child leads a session of its own (a daemon, no controlling terminal).
    package var newSession = false
    /// The signal the child gets when this process ends (0: none).
    package var deathSignal: Int32 = 0
    /// SIGINT ignored in the child (Ctrl-C in a terminal reaches the whole foreground group).
    package var ignoreInterrupt = false

    package init(
        executable: String, arguments: [String], environment: [String: String],
        descriptors: [Int32] = [-1, 1, 2], directory: String? = nil
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.descriptors = descriptors
        self.directory = directory
    }
}

/// A started child: its pid and, once it has been reaped, how it ended. Every child is reaped by a thread of its own
/// that waits for exactly its pid.
package final class RunningProcess: Sendable {
    package let pid: Int32
    /// Resolved once the child has been reaped.
    package let exit: Task<ExitStatus, Never>
    private let reaped: ResumeOnce<ExitStatus>

    init(pid: Int32) {
        self.pid = pid
        let reaped = ResumeOnce<ExitStatus>()
        self.reaped = reaped
        self.exit = Task { await reaped.value }
        let thread = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let signal = octopus_wait_status_signal(status)
            reaped.resume(signal != 0 ? .signalled(signal) : .exited(octopus_wait_status_code(status)))
        }
        thread.stackSize = 64 * 1024
        thread.start()
    }

    /// Whether the child has been reaped (its pid may belong to another process now).
    package var hasExited: Bool { reaped.isResolved }

    /// Signals the child, unless it has been reaped already.
    package func signal(_ signal: Int32) {
        if !reaped.isResolved { kill(pid, signal) }
    }

    /// Signals the child's process group (it must lead one), unless the child has been reaped already.
    package func signalGroup(_ signal: Int32) {
        if !reaped.isResolved { kill(-pid, signal) }
    }
}

/// A child forked but held before exec (see ``Spawner/spawnHeld(_:)``). Released or abandoned once; dropping it
/// abandons the child.
package final class HeldProcess: Sendable {
    package let process: RunningProcess
    private let result: Mutex<octopus_spawn_result?>
    private let executable: String

    fileprivate init(process: RunningProcess, result: octopus_spawn_result, executable: String) {
        self.process = process
        self.result = Mutex(result)
        self.executable = executable
    }

    package var pid: Int32 { process.pid }

    /// Lets the child exec; throws when exec failed (the child has then exited).
    @discardableResult
    package func release() throws(SpawnError) -> RunningProcess {
        guard var taken = result.withLock({ $0.take() }) else { return process }
        guard octopus_spawn_release(&taken) == 0 else { throw SpawnError(executable: executable, errno: taken.error) }
        return process
    }

    /// The child exits without exec.
    @discardableResult
    package func abandon() -> RunningProcess {
        if var taken = result.withLock({ $0.take() }) { octopus_spawn_abandon(&taken) }
        return process
    }

    deinit {
        abandon()
    }
}

/// Starts programs. Every fork of the process happens on one long-lived thread (see `octopus_spawn`), so a child's
/// death signal is tied to this process, not to whichever thread asked.
package enum Spawner {
    package static func spawn(_ spec: ProcessSpec) throws(SpawnError) -> RunningProcess {
        let (result, error) = start(spec, hold: false)
        if result.pid > 0 {
            let process = RunningProcess(pid: result.pid)
            if let error { throw error }
            return process
        }
        throw error ?? SpawnError(executable: spec.executable, errno: EINVAL)
    }

    /// Forks the child but holds it before exec, so that the caller can record its pid (and process group) where it
    /// survives this process, before the program runs.
    package static func spawnHeld(_ spec: ProcessSpec) throws(SpawnError) -> HeldProcess {
        let (result, error) = start(spec, hold: true)
        if let error {
            if result.pid > 0 { _ = RunningProcess(pid: result.pid) }
            throw error
        }
        return HeldProcess(process: RunningProcess(pid: result.pid), result: result, executable: spec.executable)
    }

    private static func start(_ spec: ProcessSpec, hold: Bool) -> (octopus_spawn_result, SpawnError?) {
        var descriptors = spec.descriptors.map { Int32($0) }
        while descriptors.count < 3 { descriptors.append(-1) }
        let argv: [UnsafeMutablePointer<CChar>?] = spec.arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] =
            spec.environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var result = octopus_spawn_result()
        let status: Int32 = spec.executable.withCString { path in
            argv.withUnsafeBufferPointer { argvBuffer in
                envp.withUnsafeBufferPointer { envpBuffer in
                    descriptors.withUnsafeBufferPointer { fds in
                        withOptionalCString(spec.directory) { directory in
                            var request = octopus_spawn_request(
                                path: path,
                                argv: argvBuffer.baseAddress,
                                envp: envpBuffer.baseAddress,
                                fds: fds.baseAddress,
                                fd_count: Int32(fds.count),
                                directory: directory,
                                process_group: spec.processGroup ? 1 : 0,
                                new_session: spec.newSession ? 1 : 0,
                                death_signal: spec.deathSignal,
                                ignore_interrupt: spec.ignoreInterrupt ? 1 : 0,
                                hold: hold ? 1 : 0)
                            return octopus_spawn(&request, &result)
                        }
                    }
                }
            }
        }
        if status != 0 { return (result, SpawnError(executable: spec.executable, errno: result.error)) }
        return (result, nil)
    }
}

private func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}
