import CShims
import Foundation
import OctopusCluster
import OctopusSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `start --daemon`: the command the user ran starts the master in a session of its own (stdin from /dev/null,
/// stdout and stderr appended to `logs/octopus.stdout.log` and `logs/octopus.stderr.log`), then waits on a pipe until
/// the master says the cluster is ready (exit 0) or why it failed (exit 1), like `sd_notify READY=1`.
enum Daemon {
    static let stdoutFile = "logs/octopus.stdout.log"
    static let stderrFile = "logs/octopus.stderr.log"
    static let variable = "OCTOPUS_DAEMON_NOTIFY_FD"

    /// In the daemonised master: where to say it is ready.
    static let notifyDescriptor: Int32? = ProcessInfo.processInfo.environment[variable].flatMap(Int32.init)

    static func launch(arguments: [String], cluster: ClusterConfiguration) async -> Int32 {
        let pidPath = cluster.runDirectory + "/octopus.pid"
        if let pid = PidFile.holder(pidPath) {
            printError("octopus: already running as pid \(pid) (\(pidPath) is locked by it)")
            return 1
        }
        do {
            try FileManager.default.createDirectory(atPath: "logs", withIntermediateDirectories: true)
        } catch {
            printError("octopus: cannot make logs/: \(error.localizedDescription)")
            return 1
        }
        let out = open(stdoutFile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        let err = open(stderrFile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        var notify: [Int32] = [0, 0]
        guard out >= 0, err >= 0, octopus_pipe_cloexec(&notify) == 0 else {
            printError("octopus: cannot open \(stdoutFile) or \(stderrFile): \(String(cString: strerror(errno)))")
            return 1
        }
        var environment = ProcessInfo.processInfo.environment
        environment[variable] = "3"
        var spec = ProcessSpec(
            executable: "/proc/self/exe", arguments: arguments, environment: environment,
            descriptors: [-1, out, err, notify[1]])
        spec.newSession = true
        let process: RunningProcess
        do {
            process = try Spawner.spawn(spec)
        } catch {
            printError("octopus: \(error)")
            return 1
        }
        close(notify[1])
        close(out)
        close(err)
        let deadline = cluster.startupTimeout * 3 + .seconds(10)
        let reader = notify[0]
        let said = await Task.detached { readAll(reader, within: deadline) }.value
        close(reader)
        let line = said.split(separator: "\n").first.map(String.init) ?? ""
        if line.hasPrefix("ready ") {
            print("octopus started in the background as pid \(process.pid); its output goes to \(stdoutFile) and \(stderrFile)")
            return 0
        }
        if line.hasPrefix("failed ") {
            printError("octopus: \(line.dropFirst("failed ".count))")
        } else if process.hasExited {
            printError("octopus: the daemon (pid \(process.pid)) exited before it was ready; see \(stderrFile)")
        } else {
            printError("octopus: the daemon (pid \(process.pid)) did not say it was ready within \(deadline); see \(stderrFile)")
        }
        return 1
    }

    /// Everything written on `fd` until its end, or until `limit` passes.
    private static func readAll(_ fd: Int32, within limit: Duration) -> String {
        let end = ContinuousClock.now + limit
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while ContinuousClock.now < end {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = end - ContinuousClock.now
            let ready = poll(&poller, 1, Int32(max(1, min(1000, left.components.seconds * 1000))))
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func notifyReady(_ pid: Int32) { say("ready \(pid)\n") }

    static func notifyFailed(_ message: String) {
        say("failed " + message.replacingOccurrences(of: "\n", with: " ") + "\n")
    }

    private static let said = Atomic<Bool>(false)

    /// Says it once: the descriptor is closed after, and its number may be reused.
    private static func say(_ text: String) {
        guard let fd = notifyDescriptor, !said.exchange(true, ordering: .relaxed) else { return }
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
