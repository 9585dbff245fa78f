import Foundation
import OctopusCluster
import OctopusSystem
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `octopus start --daemon`, `status`, `stop`, and what they refuse, through the built binary as a user runs them.
@Suite(.serialized) struct ServiceCommandTests {
    /// Ends a daemon a test started, by the pid holding its pid file, however the test went.
    func endDaemon(_ scratch: Scratch) async {
        guard let pid = PidFile.holder(scratch.path + "/run/octopus.pid") else { return }
        let start = ProcessTable.startTime(pid)
        kill(pid, SIGTERM)
        if await !waitUntil(within: .seconds(30), { start.map { !ProcessTable.isRunning(pid, startTime: $0) } ?? true }) {
            kill(-pid, SIGKILL)
        }
    }

    @Test func daemonStatusStopAndASecondStartRefused() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 1))
        do {
            let started = try await runProgram(octopusBinary, ["start", "--daemon", "--workers", "2"], in: scratch.path)
            #expect(started.status == .exited(0), "\(started.stderr)")
            #expect(started.stdout.contains("octopus started in the background as pid "))
            #expect(started.stdout.contains("logs/octopus.stdout.log"))
            let masterPID = try #require(PidFile.holder(scratch.path + "/run/octopus.pid"))
            #expect(scratch.read("run/octopus.pid") == "\(masterPID)\n")
            // The daemon is in a session of its own, not a child of the command that started it.
            #expect(getsid(masterPID) == masterPID)

            let status = try await runProgram(octopusBinary, ["status"], in: scratch.path)
            #expect(status.status == .exited(0))
            #expect(status.stdout.contains("octopus is running"))
            let rows = status.stdout.split(separator: "\n").filter { $0.hasPrefix("agent ") || $0.hasPrefix("worker ") || $0.hasPrefix("master ") }
            #expect(rows.count == 4, "\(status.stdout)")
            #expect(status.stdout.contains("ROLE    WORKER  PID"))

            let json = try await runProgram(octopusBinary, ["status", "--json"], in: scratch.path)
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let parsed = try decoder.decode(ClusterStatus.self, from: Data(json.stdout.utf8))
            #expect(parsed.master.pid == masterPID)
            #expect(parsed.processes.map(\.role) == [.agent, .worker, .worker])

            let second = try await runProgram(octopusBinary, ["start", "--daemon"], in: scratch.path)
            #expect(second.status == .exited(1))
            #expect(second.stderr.contains("already running as pid \(masterPID)"), "\(second.stderr)")
            let foreground = try await runProgram(octopusBinary, ["start"], in: scratch.path)
            #expect(foreground.status == .exited(1))
            #expect(foreground.stderr.contains("octopus is already running as pid \(masterPID)"), "\(foreground.stderr)")

            let pids = parsed.processes.map(\.pid) + [masterPID]
            let stopped = try await runProgram(octopusBinary, ["stop", "--timeout", "30s"], in: scratch.path)
            #expect(stopped.status == .exited(0), "\(stopped.stderr)")
            #expect(stopped.stdout.contains("octopus stopped (master pid \(masterPID))"))
            #expect(pids.allSatisfy { !ProcessTable.exists($0) || isZombie($0) })
            #expect(scratch.read("logs/app.log").contains("master exiting with status 0"))

            let after = try await runProgram(octopusBinary, ["status"], in: scratch.path)
            #expect(after.status == .exited(3))
            #expect(after.stderr.contains("octopus is not running"))
            let again = try await runProgram(octopusBinary, ["stop"], in: scratch.path)
            #expect(again.status == .exited(0))
            #expect(again.stderr.contains("octopus is not running"))
        } catch {
            await endDaemon(scratch)
            throw error
        }
        await endDaemon(scratch)
    }

    @Test func aDaemonThatCannotStartSaysWhyAndExits1() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 1))
        let failed = try await runProgram(
            fixtureBinary, ["start", "--daemon"], in: scratch.path, environment: ["FIXTURE_CRASH": "agent"])
        await endDaemon(scratch)
        #expect(failed.status == .exited(1))
        #expect(failed.stderr.contains("the agent did not start: it exited with exit status 3"), "\(failed.stderr)")
        #expect(scratch.read("logs/octopus.stderr.log").contains("fixture: crashing as asked (agent"))
    }

    @Test func aStalePidFileNeitherBlocksStartNorMakesStopSignalAnotherProcess() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 1))
        // A pid file left behind, naming a live process that has nothing to do with Octopus.
        let bystander = try Spawner.spawn(ProcessSpec(executable: "/bin/sleep", arguments: ["sleep", "60"], environment: [:]))
        defer { bystander.signal(SIGKILL) }
        mkdir(scratch.path + "/run", 0o700)
        try "\(bystander.pid)\n".write(toFile: scratch.path + "/run/octopus.pid", atomically: true, encoding: .utf8)

        let stop = try await runProgram(octopusBinary, ["stop"], in: scratch.path)
        #expect(stop.status == .exited(0))
        #expect(stop.stderr.contains("octopus is not running"))
        #expect(!bystander.hasExited && ProcessTable.exists(bystander.pid))

        try await withCluster(scratch, binary: octopusBinary) { cluster in
            #expect(await cluster.waitUntilReady(), "\(scratch.read("err.txt"))")
            #expect(scratch.read("run/octopus.pid") == "\(cluster.master.pid)\n")
        }
        #expect(!bystander.hasExited)
    }

    @Test func anUnsafeRunDirectoryOrSocketIsRefusedAndNothingStarts() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 1))
        mkdir(scratch.path + "/run", 0o755)
        chmod(scratch.path + "/run", 0o755)
        let open = try await runProgram(octopusBinary, ["start"], in: scratch.path)
        #expect(open.status == .exited(1))
        #expect(open.stderr.contains("run has mode 755; it must be 700 (nobody else may use it)"), "\(open.stderr)")
        #expect(!scratch.read("logs/app.log").contains("spawned"))

        chmod(scratch.path + "/run", 0o700)
        let path = scratch.path + "/run/control.sock"
        let listener = try RawListener(path: path)
        chmod(path, 0o666)
        let wideSocket = try await runProgram(octopusBinary, ["start"], in: scratch.path)
        #expect(wideSocket.status == .exited(1))
        #expect(wideSocket.stderr.contains("control.sock has mode 666; it must be 600"), "\(wideSocket.stderr)")
        #expect(!scratch.read("logs/app.log").contains("spawned"))

        // A run directory that belongs to someone else (root can make one for the test).
        if geteuid() == 0 {
            chmod(path, 0o600)
            chown(scratch.path + "/run", 65534, 65534)
            let foreign = try await runProgram(octopusBinary, ["start"], in: scratch.path)
            #expect(foreign.status == .exited(1))
            #expect(foreign.stderr.contains("run belongs to user id 65534, not to this user (0); refusing to use it"), "\(foreign.stderr)")
        }
        _ = listener
    }

    @Test func aBadClusterSectionIsAnErrorWithItsKeyPathAndStartsNothing() async throws {
        let scratch = try Scratch()
        try scratch.config(
            """
            log:
              appenders: { out: { type: stdout } }
              categories: { default: { appenders: [out], level: INFO } }
            cluster:
              workers: 0
              startupTimout: 5s
              crashLoop: { exits: 0, within: soon }
              restartBackoff: { initial: 2s, maximum: 1s }
              client: { invokeTimeout: forever, retries: 3 }
            """)
        let check = try await runProgram(octopusBinary, ["config", "check"], in: scratch.path)
        let start = try await runProgram(octopusBinary, ["start"], in: scratch.path)
        for outcome in [check, start] {
            #expect(outcome.status == .exited(2))
            for fragment in [
                "workers must be from 1 to 1024 at cluster.workers, found 0",
                #"unknown key "startupTimout" at cluster; did you mean "startupTimeout"?"#,
                "exits must be 1 or more at cluster.crashLoop.exits",
                "at cluster.crashLoop.within",
                "the maximum backoff is shorter than the initial one at cluster.restartBackoff.maximum",
                "at cluster.client.invokeTimeout",
                #"unknown key "retries" at cluster.client"#,
                "config.default.yaml:",
            ] {
                #expect(outcome.stderr.contains(fragment), "missing: \(fragment)\n\(outcome.stderr)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/run"))
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/logs"))
        try scratch.config(clusterConfig(workers: 1))
        let workers = try await runProgram(octopusBinary, ["start", "--workers", "0"], in: scratch.path)
        #expect(workers.status == .exited(2))
        #expect(workers.stderr.contains("--workers must be 1 or more"))
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/run"))
    }
}
