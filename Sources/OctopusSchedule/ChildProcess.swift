import CShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A program started with `posix_spawn` in a process group of its own, every signal at its default and none
/// blocked (a service that ignores or blocks SIGTERM for its own handling must not pass that on), stdin from
/// /dev/null and stdout/stderr into pipes.
struct ChildProcess: Sendable {
    enum Status: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    let pid: pid_t
    /// Read ends of the child's stdout and stderr; the reader closes them.
    let stdout: Int32
    let stderr: Int32
    /// Resolved once the child has been reaped.
    let exit: Task<Status, Never>
    private let reaped: ResumeOnce<Status>

    /// Signals the child's whole group (a shell and what it started), unless the child is already reaped.
    func signalGroup(_ signal: Int32) {
        if !reaped.isResolved { kill(-pid, signal) }
    }

    static func spawn(
        executable: String, arguments: [String], environment: [String: String], directory: String?
    ) throws(CommandFailure) -> ChildProcess {
        var out: [Int32] = [0, 0]
        var err: [Int32] = [0, 0]
        guard octopus_pipe_cloexec(&out) == 0 else { throw CommandFailure(message: "pipe: \(String(cString: strerror(errno)))") }
        guard octopus_pipe_cloexec(&err) == 0 else {
            close(out[0])
            close(out[1])
            throw CommandFailure(message: "pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        if let directory, octopus_spawn_addchdir(&actions, directory) != 0 {
            close(out[0])
            close(out[1])
            close(err[0])
            close(err[1])
            throw CommandFailure(message: "cannot change to the directory \"\(directory)\" for the command")
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var spawned: pid_t = 0
        let result = posix_spawn(&spawned, executable, &actions, &attributes, argv, envp)
        let pid = spawned
        close(out[1])
        close(err[1])
        guard result == 0 else {
            close(out[0])
            close(err[0])
            throw CommandFailure(message: "cannot start \"\(executable)\": \(String(cString: strerror(result)))")
        }
        let reaped = ResumeOnce<Status>()
        let thread = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as macros.
            let signal = status & 0x7F
            reaped.resume(signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal))
        }
        thread.start()
        return ChildProcess(pid: pid, stdout: out[0], stderr: err[0], exit: Task { await reaped.value }, reaped: reaped)
    }
}
