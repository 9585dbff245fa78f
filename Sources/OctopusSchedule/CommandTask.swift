import Foundation
public import Logging
import OctopusSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A program a `command` task runs: with arguments and no shell, unless `shell` is set.
public struct CommandSpec: Sendable, Hashable {
    /// A path, or a name looked up in `PATH`; with `shell`, a shell command line.
    public var command: String
    public var arguments: [String]
    /// Run `command` with `/bin/sh -c` (the arguments become `$1`, `$2`, …).
    public var shell: Bool
    /// The working directory (default: the service's).
    public var directory: String?
    /// Variables added to the service's environment.
    public var environment: [String: String]
    /// How long the program gets between SIGTERM and SIGKILL when its run is cancelled or times out.
    public var killGrace: Duration

    public init(
        command: String, arguments: [String] = [], shell: Bool = false, directory: String? = nil,
        environment: [String: String] = [:], killGrace: Duration = .seconds(5)
    ) {
        self.command = command
        self.arguments = arguments
        self.shell = shell
        self.directory = directory
        self.environment = environment
        self.killGrace = killGrace
    }

    /// Runs the program to its end. Its stdout lines go to `logger` at INFO and its stderr lines at WARNING, as
    /// they come; the exit status and duration are logged when it ends. A non-zero status or a signal throws.
    /// Cancellation sends SIGTERM, then SIGKILL after `killGrace`.
    public func run(logger: Logger) async throws {
        let executable: String
        let argv: [String]
        if shell {
            executable = "/bin/sh"
            argv = ["sh", "-c", command, "sh"] + arguments
        } else {
            guard let found = Self.resolve(command) else {
                throw CommandFailure(message: "command \"\(command)\" not found in PATH")
            }
            executable = found
            argv = [command] + arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment.merge(self.environment) { $1 }
        let started = ContinuousClock.now
        let child = try await ChildProcess.spawn(
            executable: executable, arguments: argv, environment: environment, directory: directory)
        let readers = [
            LineReader.start(child.stdout) { logger.info("\($0)") },
            LineReader.start(child.stderr) { logger.warning("\($0)") },
        ]
        let grace = killGrace
        let status = await withTaskCancellationHandler {
            await child.exit
        } onCancel: {
            child.signalGroup(SIGTERM)
            Task {
                try? await Task.sleep(for: grace)
                child.signalGroup(SIGKILL)
            }
        }
        for reader in readers { await reader.value }
        let elapsed = ContinuousClock.now - started
        let ms = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        switch status {
        case .signalled(let signal):
            logger.warning("\(command) killed by signal \(signal) after \(ms) ms")
            if Task.isCancelled { throw CancellationError() }
            throw CommandFailure(message: "killed by signal \(signal)")
        case .exited(let code):
            logger.info("\(command) exited with status \(code) in \(ms) ms")
            if code != 0 { throw CommandFailure(message: "exited with status \(code)") }
        }
    }

    /// The executable for `name`: itself when it holds a slash, else the first match in `PATH`.
    static func resolve(_ name: String) -> String? {
        if name.contains("/") { return name }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}

/// Why a command run failed.
public struct CommandFailure: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
