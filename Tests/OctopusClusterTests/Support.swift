import Foundation
import OctopusCluster
import OctopusSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Octopus's, not Swift Testing's (exit tests) of the same name.
typealias ExitStatus = OctopusSystem.ExitStatus

/// Binaries built beside the test bundle.
let buildDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
let fixtureBinary = buildDirectory.appendingPathComponent("ClusterFixture").path
let octopusBinary = buildDirectory.appendingPathComponent("octopus").path

/// A directory of its own for one test, with a `config/` (removed at the end).
final class Scratch: @unchecked Sendable {
    let path: String

    init() throws {
        // Short: the control socket's path must fit in sun_path (108 bytes).
        path = "/tmp/oc-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: path + "/config", withIntermediateDirectories: true)
    }

    func config(_ text: String, name: String = "config.default.yaml") throws {
        try text.write(toFile: path + "/config/" + name, atomically: true, encoding: .utf8)
    }

    func read(_ name: String) -> String {
        (try? String(contentsOfFile: path + "/" + name, encoding: .utf8)) ?? ""
    }

    func lines(_ name: String) -> [String] {
        read(name).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// Kept when OCTOPUS_KEEP_SCRATCH is set (to read a failed test's logs).
    deinit {
        if ProcessInfo.processInfo.environment["OCTOPUS_KEEP_SCRATCH"] == nil { try? FileManager.default.removeItem(atPath: path) }
    }
}

/// The test configuration: one file for everything (with the pid), the schedule log beside it, short backoffs.
func clusterConfig(workers: Int = 2, cluster: String = "", schedule: String = "", categories: String = "") -> String {
    """
    log:
      appenders:
        file: { type: file, filename: logs/app.log, layout: { type: pattern, pattern: "%d{hh:mm:ss.SSS} [%p] %c %z - %m%X" } }
        scheduleFile: { type: file, filename: logs/schedule.log, layout: { type: pattern, pattern: "%d{hh:mm:ss.SSS} [%p] %c %z - %m%X" } }
        lines: { type: file, filename: logs/lines.log, layout: { type: messagePassThrough } }
      categories:
        default: { appenders: [file], level: INFO }
        schedule: { appenders: [scheduleFile], level: INFO, inherit: false }
        fixture: { appenders: [lines], level: INFO, inherit: false }
    \(categories)
    cluster:
      workers: \(workers)
      startupTimeout: 20s
      shutdownTimeout: 5s
      restartBackoff: { initial: 50ms, maximum: 400ms }
    \(cluster)
    \(schedule)
    """
}

/// A cluster a test started: its master in a process group of its own (so that a test can send the terminal's
/// Ctrl-C to the group), its stdout and stderr in `out.txt` and `err.txt`.
final class RunningCluster: Sendable {
    let scratch: Scratch
    let master: RunningProcess

    init(_ scratch: Scratch, binary: String = fixtureBinary, arguments: [String] = ["start"], environment: [String: String] = [:]) throws {
        self.scratch = scratch
        let out = open(scratch.path + "/out.txt", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        let err = open(scratch.path + "/err.txt", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        defer {
            close(out)
            close(err)
        }
        var spec = ProcessSpec(
            executable: binary, arguments: [binary] + arguments,
            environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, descriptors: [-1, out, err],
            directory: scratch.path)
        spec.processGroup = true
        master = try Spawner.spawn(spec)
    }

    var log: String { scratch.read("logs/app.log") }
    var runDirectory: String { scratch.path + "/run" }

    /// Waits until the master's log has a line matching `pattern` (a regular expression); false after `limit`.
    @discardableResult
    func waitForLog(_ pattern: String, file: String = "logs/app.log", within limit: Duration = .seconds(60)) async -> Bool {
        await waitUntil(within: limit) { self.scratch.read(file).range(of: pattern, options: .regularExpression) != nil }
    }

    func waitUntilReady() async -> Bool {
        await waitForLog("cluster ready in")
    }

    /// The master's answer; patient, as the machine running the whole suite in parallel can be slow to schedule it.
    func status() async throws -> ClusterStatus {
        try await ClusterControl.status(runDirectory: runDirectory, timeout: .seconds(30))
    }

    /// The exit status of the master, waiting at most `limit`.
    func exit(within limit: Duration = .seconds(60)) async -> ExitStatus? {
        let master = self.master
        return await value(of: { await master.exit.value }, orNilAfter: limit)
    }

    /// Every process below the master now (children, and what they started while their parent lives).
    func descendants() -> [(pid: Int32, start: UInt64)] {
        var found: [Int32] = []
        var frontier = [master.pid]
        while let next = frontier.popLast() {
            let children = ProcessTable.children(of: next)
            found += children
            frontier += children
        }
        return found.compactMap { pid in ProcessTable.startTime(pid).map { (pid, $0) } }
    }

    /// Ends the cluster however it stands: SIGTERM to the master, then SIGKILL to its group and to every process it
    /// had below it. Every test calls it, so no test leaves a process behind.
    func end() async {
        let below = descendants()
        if !master.hasExited {
            master.signal(SIGTERM)
            if await exit(within: .seconds(30)) == nil {
                kill(-master.pid, SIGKILL)
                _ = await master.exit.value
            }
        }
        for process in below where ProcessTable.isRunning(process.pid, startTime: process.start) {
            kill(process.pid, SIGKILL)
        }
    }
}

/// Runs `body` with a started cluster and always ends it.
func withCluster(
    _ scratch: Scratch, binary: String = fixtureBinary, arguments: [String] = ["start"],
    environment: [String: String] = [:], _ body: (RunningCluster) async throws -> Void
) async throws {
    let cluster = try RunningCluster(scratch, binary: binary, arguments: arguments, environment: environment)
    do {
        try await body(cluster)
    } catch {
        await cluster.end()
        throw error
    }
    await cluster.end()
}

/// Polls `condition` until it holds; false after `limit` (no test passes or fails on how fast something is).
func waitUntil(within limit: Duration = .seconds(60), _ condition: () -> Bool) async -> Bool {
    let end = ContinuousClock.now + limit
    while ContinuousClock.now < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// Runs a program to its end: status and output.
func runProgram(_ binary: String, _ arguments: [String], in directory: String, environment: [String: String] = [:]) async throws
    -> (status: ExitStatus, stdout: String, stderr: String)
{
    let outPath = directory + "/.cmd-out-\(UUID().uuidString.prefix(6))"
    let errPath = directory + "/.cmd-err-\(UUID().uuidString.prefix(6))"
    let out = open(outPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    let err = open(errPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    let spec = ProcessSpec(
        executable: binary, arguments: [binary] + arguments,
        environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, descriptors: [-1, out, err],
        directory: directory)
    let process: RunningProcess
    do {
        process = try Spawner.spawn(spec)
    } catch {
        close(out)
        close(err)
        throw error
    }
    close(out)
    close(err)
    let status = await process.exit.value
    defer {
        unlink(outPath)
        unlink(errPath)
    }
    return (
        status, (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    )
}
