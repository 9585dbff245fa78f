import Foundation
import OctopusCluster
import OctopusSystem
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The process model with real processes: a master, an agent and workers of the fixture application.
@Suite(.serialized) struct ProcessModelTests {
    @Test func startWithThreeWorkersRunsFiveProcessesWithTheirRolesAndParents() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 1))
        try await withCluster(scratch, arguments: ["start", "--workers", "3"]) { cluster in
            #expect(await cluster.waitUntilReady(), "\(cluster.log)\n\(scratch.read("err.txt"))")
            let status = try await cluster.status()
            #expect(status.state == "running")
            #expect(status.master.pid == cluster.master.pid)
            #expect(status.processes.count == 4)
            #expect(status.processes.filter { $0.role == .agent }.count == 1)
            #expect(status.processes.filter { $0.role == .worker }.compactMap(\.workerID).sorted() == [1, 2, 3])
            for process in status.processes {
                #expect(process.state == "ready")
                #expect(ProcessTable.parent(process.pid) == cluster.master.pid, "\(process)")
                #expect((process.residentBytes ?? 0) > 0)
                #expect(process.restarts == 0)
            }
            #expect(Set(cluster.descendants().map(\.pid)) == Set(status.processes.map(\.pid)))
            // Every line says which process wrote it.
            let log = cluster.log
            #expect(log.contains(" \(cluster.master.pid) - cluster ready in "))
            #expect(log.contains("role=master"))
            // The run directory is private, its socket and pid file as documented.
            #expect(mode(cluster.runDirectory) == 0o700)
            #expect(mode(cluster.runDirectory + "/control.sock") == 0o600)
            #expect(mode(cluster.runDirectory + "/octopus.pid") == 0o644)
            #expect(scratch.read("run/octopus.pid") == "\(cluster.master.pid)\n")

            let pids = status.processes.map(\.pid) + [cluster.master.pid]
            cluster.master.signal(SIGTERM)
            #expect(await cluster.exit() == .exited(0))
            #expect(await waitUntil { pids.allSatisfy { !ProcessTable.exists($0) || isZombie($0) } })
            #expect(!FileManager.default.fileExists(atPath: cluster.runDirectory + "/octopus.pid"))
        }
    }

    @Test func aKilledWorkerIsReplacedWithItsIdAndAKilledAgentResumesTheTimers() async throws {
        let scratch = try Scratch()
        try scratch.config(
            clusterConfig(
                workers: 2,
                schedule: """
                    schedule:
                      tasks:
                        tick: { kind: log, interval: 100ms, message: tick }
                    """))
        try await withCluster(scratch) { cluster in
            #expect(await cluster.waitUntilReady())
            let before = try await cluster.status()
            let worker2 = try #require(before.processes.first { $0.workerID == 2 })
            kill(worker2.pid, SIGKILL)
            #expect(
                await waitUntil {
                    cluster.log.contains("worker 2 (pid \(worker2.pid)) exited with signal 9 (SIGKILL)")
                        && cluster.log.contains("restarting the worker 2 in 0.05 seconds (exit 1 of 5 allowed within 60.0 seconds)")
                })
            let replaced = await waitForProcess(cluster) { $0.workerID == 2 && $0.pid != worker2.pid && $0.state == "ready" }
            #expect(replaced?.restarts == 1)
            #expect(try await cluster.status().processes.first { $0.workerID == 1 }?.restarts == 0)

            let agent = try #require(before.processes.first { $0.role == .agent })
            kill(agent.pid, SIGKILL)
            let newAgent = try #require(await waitForProcess(cluster) { $0.role == .agent && $0.pid != agent.pid && $0.state == "ready" })
            #expect(newAgent.restarts == 1)
            // The new agent times the task again, and a worker runs its ticks.
            #expect(await cluster.waitForLog(#"schedule \#(newAgent.pid) - \[Timer\] tick next at "#, file: "logs/schedule.log"))
            func finished() -> Int { scratch.lines("logs/schedule.log").filter { $0.contains(" tick in worker") && $0.contains("finished in") }.count }
            let ticksBefore = finished()
            #expect(await waitUntil { finished() > ticksBefore + 3 })
        }
    }

    @Test func aChildThatExitsAtOnceEveryTimeStopsEverythingAtTheCrashLoopLimit() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 2, cluster: "  crashLoop: { exits: 3, within: 60s }"))
        try await withCluster(scratch, environment: ["FIXTURE_CRASH": "worker:2"]) { cluster in
            let status = await cluster.exit()
            #expect(status == .exited(1), "\(scratch.read("err.txt"))")
            let err = scratch.read("err.txt")
            #expect(err.contains("octopus: the worker 2 exited 3 times within 60.0 seconds (last: exit status 3); giving up and stopping everything; its last lines on stderr:"), "\(err)")
            #expect(err.contains("  | fixture: crashing as asked (worker 2 (pid "))
            let log = cluster.log
            #expect(log.contains("[FATAL] octopus.master"))
            #expect(log.contains("worker 1 (pid "))
            #expect(cluster.descendants().isEmpty)
        }
    }

    @Test func anAgentThatCannotStartFailsTheStartWithItsLastLines() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 2))
        try await withCluster(scratch, environment: ["FIXTURE_CRASH": "agent"]) { cluster in
            #expect(await cluster.exit() == .exited(1))
            let err = scratch.read("err.txt")
            #expect(err.contains("octopus: the agent did not start: it exited with exit status 3; its last lines on stderr:"), "\(err)")
            #expect(err.contains("  | fixture: crashing as asked (agent (pid "))
            #expect(!cluster.log.contains("spawned worker"))
        }
    }

    @Test func aHookThatDoesNotFinishFailsTheStartNamingTheHookAndTheRole() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 1).replacingOccurrences(of: "startupTimeout: 20s", with: "startupTimeout: 1s"))
        try await withCluster(scratch, environment: ["FIXTURE_HANG_HOOK": "willReady:agent"]) { cluster in
            #expect(await cluster.exit() == .exited(1))
            let err = scratch.read("err.txt")
            #expect(err.contains("the willReady hook (#1) of the agent did not finish within 1.0 seconds (cluster.startupTimeout)"), "\(err)")
            #expect(err.contains("octopus: the agent did not start"))
        }
    }

    @Test func killingTheMasterTakesEveryChildAndWhatTheyStartedWithIt() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 2, schedule: sleeperTask))
        try await withCluster(scratch) { cluster in
            #expect(await cluster.waitUntilReady())
            #expect(await waitUntil { scratch.lines("pids.txt").count == 2 }, "\(scratch.read("pids.txt"))")
            let below = cluster.descendants()
            let commands = scratch.lines("pids.txt").flatMap { $0.split(separator: " ").compactMap { Int32($0) } }
            #expect(commands.count == 4)
            #expect(commands.allSatisfy { ProcessTable.exists($0) })
            let killed = ContinuousClock.now
            kill(cluster.master.pid, SIGKILL)
            #expect(await cluster.exit() == .signalled(SIGKILL))
            let allGone = await waitUntil(within: .seconds(20)) {
                below.allSatisfy { !ProcessTable.isRunning($0.pid, startTime: $0.start) }
                    && commands.allSatisfy { !ProcessTable.exists($0) || isZombie($0) }
            }
            #expect(allGone, "still running: \(below.filter { ProcessTable.isRunning($0.pid, startTime: $0.start) }.map(\.pid))")
            print("every child and command gone \(ContinuousClock.now - killed) after SIGKILL to the master")
        }
    }

    @Test func whatACommandTaskStartedEndsWhenItsWorkerIsKilled() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 2, schedule: sleeperTask))
        try await withCluster(scratch) { cluster in
            #expect(await cluster.waitUntilReady())
            #expect(await waitUntil { scratch.lines("pids.txt").count == 2 })
            // pids.txt: for each worker, the shell's pid then the background sleep's (both in the shell's group)
            let status = try await cluster.status()
            let worker1 = try #require(status.processes.first { $0.workerID == 1 })
            let shells = scratch.lines("pids.txt").compactMap { line -> (shell: Int32, sleep: Int32)? in
                let parts = line.split(separator: " ").compactMap { Int32($0) }
                return parts.count == 2 ? (parts[0], parts[1]) : nil
            }
            let ofWorker1 = try #require(shells.first { ProcessTable.parent($0.shell) == worker1.pid })
            kill(worker1.pid, SIGKILL)
            #expect(await waitUntil { !ProcessTable.exists(ofWorker1.sleep) || isZombie(ofWorker1.sleep) })
            #expect(await waitUntil { !ProcessTable.exists(ofWorker1.shell) || isZombie(ofWorker1.shell) })
            #expect(!cluster.master.hasExited)
        }
    }

    @Test func sigtermStopsEveryProcessAndAChildThatIgnoresItIsKilledAtShutdownTimeout() async throws {
        let scratch = try Scratch()
        try scratch.config(
            clusterConfig(workers: 2).replacingOccurrences(of: "shutdownTimeout: 5s", with: "shutdownTimeout: 1s"))
        try await withCluster(scratch, environment: ["FIXTURE_IGNORE_TERM": "worker:1"]) { cluster in
            #expect(await cluster.waitUntilReady())
            let status = try await cluster.status()
            let worker1 = try #require(status.processes.first { $0.workerID == 1 })
            cluster.master.signal(SIGTERM)
            #expect(await cluster.exit() == .exited(0))
            let log = cluster.log
            #expect(log.contains("worker 1 (pid \(worker1.pid)) still running 1.0 seconds after SIGTERM; sending SIGKILL"), "\(log)")
            #expect(log.contains("worker 2 (pid"))
            #expect(!log.contains("restarting"))
            #expect(log.contains("master exiting with status 0"))
            #expect(status.processes.allSatisfy { !ProcessTable.exists($0.pid) || isZombie($0.pid) })
        }
    }

    @Test func fourWorkersLog20000LinesEachAndNoneIsLostWhenTheMasterGetsSIGTERMAtOnce() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 4))
        try await withCluster(scratch, environment: ["FIXTURE_LOG_LINES": "20000"]) { cluster in
            #expect(await cluster.waitUntilReady())
            cluster.master.signal(SIGTERM)
            #expect(await cluster.exit() == .exited(0))
            var next = [Int: Int]()
            var problems: [String] = []
            let lines = scratch.lines("logs/lines.log")
            for line in lines {
                let parts = line.split(separator: " ")
                guard parts.count == 4, parts[0] == "worker", let worker = Int(parts[1]), parts[2] == "line",
                    let n = Int(parts[3])
                else {
                    problems.append("not a whole line: \(line)")
                    continue
                }
                if next[worker, default: 0] != n { problems.append("worker \(worker): expected line \(next[worker, default: 0]), found \(n)") }
                next[worker] = n + 1
            }
            #expect(problems.isEmpty, "\(problems.prefix(10))")
            #expect(lines.count == 80_000)
            // On failure, what the master saw (a child SIGKILLed at shutdownTimeout loses what it had not written).
            #expect(next == [1: 20_000, 2: 20_000, 3: 20_000, 4: 20_000], "\(cluster.log)\n\(scratch.read("err.txt"))")
        }
    }

    @Test func sigtermToAWorkerOrTheAgentStopsItGracefullyAndItIsReplaced() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 2))
        try await withCluster(scratch) { cluster in
            #expect(await cluster.waitUntilReady())
            let before = try await cluster.status()
            let worker1 = try #require(before.processes.first { $0.workerID == 1 })
            kill(worker1.pid, SIGTERM)
            let replacement = await waitForProcess(cluster) { $0.workerID == 1 && $0.pid != worker1.pid && $0.state == "ready" }
            #expect(replacement != nil)
            #expect(await cluster.waitForLog("worker 1 \\(pid \(worker1.pid)\\) exited after"))
            let log = cluster.log
            #expect(log.contains("worker 1 (pid \(worker1.pid)) is stopping: graceful shutdown"))
            #expect(log.contains("starting a replacement for worker 1 (pid \(worker1.pid)) while it finishes"))
            #expect(!log.contains("restarting the worker 1"))

            let agent = try #require(before.processes.first { $0.role == .agent })
            kill(agent.pid, SIGTERM)
            #expect(await waitForProcess(cluster) { $0.role == .agent && $0.pid != agent.pid && $0.state == "ready" } != nil)
            #expect(cluster.log.contains("agent (pid \(agent.pid)) exited after"))
            #expect(!cluster.log.contains("restarting the agent"))
        }
    }

    @Test func ctrlCInATerminalStopsTheClusterAsCleanlyAsSIGTERM() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 2))
        try await withCluster(scratch) { cluster in
            #expect(await cluster.waitUntilReady())
            let pids = try await cluster.status().processes.map(\.pid)
            // The terminal sends SIGINT to the whole foreground process group: the master and its children.
            kill(-cluster.master.pid, SIGINT)
            #expect(await cluster.exit() == .exited(0))
            let log = cluster.log
            #expect(log.contains("SIGINT: stopping gracefully"))
            #expect(!log.contains("restarting"))
            #expect(!log.contains("[ERROR]"), "\(log)")
            #expect(pids.allSatisfy { !ProcessTable.exists($0) || isZombie($0) })
        }
    }

    @Test func sigusr2RestartsTheWorkersOneAtATimeWithAReplacementReadyBeforeEachStop() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 2))
        try await withCluster(scratch) { cluster in
            #expect(await cluster.waitUntilReady())
            let before = try await cluster.status().processes.filter { $0.role == .worker }
            cluster.master.signal(SIGUSR2)
            #expect(await cluster.waitForLog("rolling restart done"))
            let lines = cluster.log.split(separator: "\n").map(String.init)
            func index(_ fragment: String) -> Int? { lines.firstIndex { $0.contains(fragment) } }
            let after = try await cluster.status().processes.filter { $0.role == .worker }
            #expect(Set(after.map(\.pid)).isDisjoint(with: before.map(\.pid)))
            #expect(after.map(\.workerID).sorted { ($0 ?? 0) < ($1 ?? 0) } == [1, 2])
            for old in before {
                let new = try #require(after.first { $0.workerID == old.workerID })
                let newReady = try #require(index("worker \(old.workerID ?? 0) (pid \(new.pid)) ready in"))
                let oldExit = try #require(index("worker \(old.workerID ?? 0) (pid \(old.pid)) exited"))
                #expect(newReady < oldExit)
            }
            // Worker 2 was replaced only after worker 1's predecessor had been stopped.
            let firstExit = try #require(index("worker 1 (pid \(before.first { $0.workerID == 1 }!.pid)) exited"))
            let secondSpawn = try #require(index("spawned worker 2 (pid \(after.first { $0.workerID == 2 }!.pid))"))
            #expect(firstExit < secondSpawn)
        }
    }

    @Test func sighupReopensTheLogFilesOfEveryProcess() async throws {
        let scratch = try Scratch()
        try scratch.config(
            clusterConfig(
                workers: 2,
                schedule: """
                    schedule:
                      tasks:
                        beat: { kind: log, interval: 100ms, type: all, message: beat, category: default }
                    """))
        try await withCluster(scratch) { cluster in
            #expect(await cluster.waitUntilReady())
            #expect(await waitUntil { cluster.log.contains("worker=1") && cluster.log.contains("worker=2") })
            try FileManager.default.moveItem(atPath: scratch.path + "/logs/app.log", toPath: scratch.path + "/logs/app.log.moved")
            cluster.master.signal(SIGHUP)
            #expect(
                await waitUntil {
                    let log = cluster.log
                    return log.contains("beat worker=1") && log.contains("beat worker=2") && log.contains("reopened log files")
                }, "\(cluster.log)")
        }
    }

    @Test func garbageOnTheControlSocketOrAPrivateChannelClosesOnlyThatConnection() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 2))
        try await withCluster(scratch, environment: ["FIXTURE_GARBAGE": "worker:1"]) { cluster in
            #expect(await cluster.waitUntilReady())
            // The fixture's worker 1 wrote garbage on its channel: the master closed that connection, the worker
            // (its channel gone) ended, and was replaced.
            #expect(await cluster.waitForLog("closing the connection: bad magic"), "\(cluster.log)")
            #expect(await waitForProcess(cluster) { $0.workerID == 1 && $0.restarts >= 1 && $0.state == "ready" } != nil)

            let socket = try RawSocket(path: cluster.runDirectory + "/control.sock")
            socket.send(Array("GET / HTTP/1.1\r\nHost: nowhere\r\n\r\n".utf8))
            #expect(socket.readUntilClosed())
            let status = try await cluster.status()
            #expect(status.state == "running")
            #expect(!cluster.master.hasExited)
        }
    }
}

/// A command task in every worker, at start: a shell in a process group of its own that starts a `sleep` and waits;
/// each writes "SHELL SLEEP" to pids.txt.
let sleeperTask = """
    schedule:
      tasks:
        sleeper: { kind: command, immediate: true, type: all, shell: true, command: "sleep 300 & echo $$ $! >> pids.txt; wait" }
    """

func mode(_ path: String) -> mode_t {
    var info = stat()
    return lstat(path, &info) == 0 ? info.st_mode & 0o777 : 0
}

func isZombie(_ pid: Int32) -> Bool {
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    guard let close = stat.lastIndex(of: ")") else { return true }
    return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
}

/// Waits until the cluster's status has a process matching `match`.
func waitForProcess(_ cluster: RunningCluster, _ match: (ProcessStatus) -> Bool) async -> ProcessStatus? {
    let end = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < end {
        if let found = try? await cluster.status().processes.first(where: match) { return found }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return nil
}

@Suite(.serialized) struct LifecycleHookTests {
    @Test func hooksRunInOrderInEachRoleAndConfigWillLoadChangesTheConfiguration() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 1))
        let environment = ["FIXTURE_HOOKS": "1", "FIXTURE_WORKERS_IN_CODE": "2"]
        try await withCluster(scratch, environment: environment) { cluster in
            #expect(await cluster.waitUntilReady())
            // The configuration said 1 worker; configWillLoad said 2, and the master started 2.
            #expect(try await cluster.status().processes.filter { $0.role == .worker }.count == 2)
            #expect(await waitUntil { scratch.lines("hooks.log").filter { $0.hasPrefix("serverDidReady") }.count == 3 })
            cluster.master.signal(SIGTERM)
            #expect(await cluster.exit() == .exited(0))
            let hooks = scratch.lines("hooks.log")
            #expect(hooks.prefix(2) == ["configWillLoad master", "configDidLoad master workers=2"])
            for process in ["agent", "worker 1", "worker 2"] {
                let own = hooks.filter { $0.hasSuffix(" \(process)") || $0.contains(" \(process) workers=") }
                #expect(
                    own == [
                        "configWillLoad \(process)", "configDidLoad \(process) workers=2", "didLoad \(process)",
                        "willReady \(process)", "didReady \(process)", "serverDidReady \(process)", "beforeClose \(process)",
                    ], "\(process): \(own)")
            }
            // beforeClose runs before logging is flushed: its lines are in the file.
            let log = cluster.log
            for (process, metadata) in [("agent", "role=agent"), ("worker 1", "worker=1"), ("worker 2", "worker=2")] {
                #expect(log.contains("last words of the \(process) \(metadata)"), "\(process)")
            }
            // The agent's beforeClose ran after every worker's (workers stop first).
            let agentClose = try #require(hooks.firstIndex(of: "beforeClose agent"))
            #expect(hooks.firstIndex(of: "beforeClose worker 1").map { $0 < agentClose } == true)
            #expect(hooks.firstIndex(of: "beforeClose worker 2").map { $0 < agentClose } == true)
        }
    }
}

@Suite(.serialized) struct ListeningSocketTests {
    /// One connection to 127.0.0.1:`port`: what the server said, or nil when it could not connect.
    func ask(_ port: Int) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func workersAcceptOnTheSocketTheMasterHoldsAndNoConnectionIsRefusedWhileOneIsReplaced() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 2, cluster: "  listen: [\"127.0.0.1:0\"]"))
        try await withCluster(scratch, environment: ["FIXTURE_SERVE": "1"]) { cluster in
            #expect(await cluster.waitUntilReady())
            let status = try await cluster.status()
            let listening = try #require(status.listening.first)
            let port = try #require(Int(listening.split(separator: ":").last ?? ""))
            #expect(listening == "127.0.0.1:\(port)" && port > 0)
            #expect(cluster.log.contains("listening on 127.0.0.1:\(port) for the workers"))
            // Both workers accept on it.
            var seen = Set<String>()
            for _ in 0..<200 where seen.count < 2 {
                if let answer = ask(port), let id = answer.split(separator: " ").dropFirst().first { seen.insert(String(id)) }
            }
            #expect(seen == ["1", "2"])

            // Worker 1 killed: while it is replaced, every connection is still answered (by worker 2, or by the new
            // worker 1 once it is up), none refused.
            let worker1 = try #require(status.processes.first { $0.workerID == 1 })
            kill(worker1.pid, SIGKILL)
            // From its death on (a connection it took from the queue between the signal and its end dies with it: a
            // loaded machine can leave that moment long enough for one).
            #expect(await cluster.waitForLog("worker 1 \\(pid \(worker1.pid)\\) exited"))
            var refused = 0
            var answered = 0
            let end = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < end {
                if let answer = ask(port), answer.hasPrefix("worker ") { answered += 1 } else { refused += 1 }
                if let now = try? await cluster.status(), now.processes.contains(where: { $0.workerID == 1 && $0.pid != worker1.pid && $0.state == "ready" }),
                    answered > 20
                {
                    break
                }
            }
            #expect(refused == 0)
            #expect(answered > 20)
        }
    }
}

@Suite(.serialized) struct StopTests {
    @Test func aSecondSIGTERMStopsAtOnceWithANonZeroStatus() async throws {
        let scratch = try Scratch()
        try scratch.config(
            clusterConfig(workers: 2).replacingOccurrences(of: "shutdownTimeout: 5s", with: "shutdownTimeout: 60s"))
        try await withCluster(scratch, environment: ["FIXTURE_IGNORE_TERM": "worker:1"]) { cluster in
            #expect(await cluster.waitUntilReady())
            let pids = try await cluster.status().processes.map(\.pid)
            cluster.master.signal(SIGTERM)
            // Worker 1 ignores the graceful stop; the master would wait a minute for it.
            #expect(await cluster.waitForLog("stopping \\(stop requested\\)"))
            cluster.master.signal(SIGTERM)
            #expect(await cluster.exit(within: .seconds(30)) == .exited(1))
            #expect(cluster.log.contains("SIGTERM again: stopping at once"))
            #expect(cluster.log.contains("stopping at once: SIGKILL to every child"))
            #expect(pids.allSatisfy { !ProcessTable.exists($0) || isZombie($0) })
        }
    }

    @Test func anApplicationsOwnStopSaysWhatIsStillAliveAfterItsTimeout() async throws {
        let scratch = try Scratch()
        try scratch.config(
            clusterConfig(workers: 2).replacingOccurrences(of: "shutdownTimeout: 5s", with: "shutdownTimeout: 4s"))
        try await withCluster(scratch, environment: ["FIXTURE_IGNORE_TERM": "worker:1"]) { cluster in
            #expect(await cluster.waitUntilReady())
            let status = try await runProgram(fixtureBinary, ["status"], in: scratch.path)
            #expect(status.status == .exited(0))
            #expect(status.stdout.contains("octopus is running"))
            let worker1 = try #require(try await cluster.status().processes.first { $0.workerID == 1 })
            let early = try await runProgram(fixtureBinary, ["stop", "--timeout", "1s"], in: scratch.path)
            #expect(early.status == .exited(1))
            #expect(early.stderr.contains("still running after 1.0 seconds: "), "\(early.stderr)")
            #expect(early.stderr.contains("master (pid \(cluster.master.pid))"))
            #expect(early.stderr.contains("worker 1 (pid \(worker1.pid))"))
            // At shutdownTimeout the master kills the stubborn worker, and a stop that waits long enough sees the end.
            let late = try await runProgram(fixtureBinary, ["stop", "--timeout", "30s"], in: scratch.path)
            #expect(late.status == .exited(0), "\(late.stderr)")
            #expect(await cluster.exit() == .exited(0))
            let bad = try await runProgram(fixtureBinary, ["stop", "--timeout", "soon"], in: scratch.path)
            #expect(bad.status == .exited(2))
        }
    }
}

@Suite(.serialized) struct MessengerQueueTests {
    @Test func aFullQueueDropsAndCountsAndSaysSo() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 1, cluster: "  messageQueue: 5"))
        let environment = ["FIXTURE_PING_AGENT": "1", "FIXTURE_SLOW_REPLACEMENT_AGENT": "1500"]
        try await withCluster(scratch, environment: environment) { cluster in
            #expect(await cluster.waitUntilReady())
            let agent = try #require(try await cluster.status().processes.first { $0.role == .agent })
            kill(agent.pid, SIGKILL)
            let newAgent = try #require(await waitForProcess(cluster) { $0.role == .agent && $0.pid != agent.pid && $0.state == "ready" })
            #expect(await cluster.waitForLog("dropped 1 messenger message\\(s\\) for the agent: its queue of 5 is full while it is not ready"))
            #expect(await cluster.waitForLog("messenger message\\(s\\) for agent \\(pid \(newAgent.pid)\\) were dropped while it was not ready"))
            #expect(cluster.log.contains("delivered 5 queued messenger message(s) to agent (pid \(newAgent.pid))"))
            #expect(try await cluster.status().droppedMessages > 0)
        }
    }
}

@Suite(.serialized) struct StartupTests {
    @Test func aChildThatExitsWhileOthersAreStartingIsRestartedOnceTheClusterRuns() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 2))
        // Worker 2 takes 2 s to start; worker 1 is ready at once and exits while worker 2 is still starting.
        let environment = ["FIXTURE_SLOW_START": "worker:2", "FIXTURE_EXIT_SOON": "worker:1"]
        try await withCluster(scratch, environment: environment) { cluster in
            #expect(await cluster.waitUntilReady())
            let replaced = await waitForProcess(cluster) { $0.workerID == 1 && $0.restarts == 1 && $0.state == "ready" }
            #expect(replaced != nil, "\(cluster.log)")
            #expect(cluster.log.contains("restarting the worker 1 in"))
        }
    }
}
