import Foundation
import OctopusCluster
import OctopusSchedule
import OctopusSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What the agent's schedule log and the fixture's ticks.log say about the runs of one task.
struct TickRecord {
    /// Job id → the lines of the agent's schedule log about it.
    var agentLines: [Int: [String]] = [:]
    /// Job id → the runs that began (ticks.log), as "WORKER PID".
    var runs: [Int: [String]] = [:]
    /// Every run's scheduled time (ms).
    var scheduled: [Int64] = []

    init(task: String, scratch: Scratch) {
        let marker = "] \(task)"
        for line in scratch.lines("logs/schedule.log") {
            guard let range = line.range(of: "[Job#"), line.contains(marker) else { continue }
            let digits = line[range.upperBound...].prefix { $0.isNumber }
            guard let id = Int(digits), line[range.upperBound...].dropFirst(digits.count).hasPrefix(marker) else { continue }
            agentLines[id, default: []].append(String(line))
        }
        for line in scratch.lines("ticks.log") {
            let parts = line.split(separator: " ")
            guard parts.count == 5, parts[0] == task, let id = Int(parts[1]), let at = Int64(parts[2]) else { continue }
            runs[id, default: []].append("\(parts[3]) \(parts[4])")
            scheduled.append(at)
        }
    }

    func lines(_ id: Int, containing fragment: String) -> [String] {
        (agentLines[id] ?? []).filter { $0.contains(fragment) }
    }

    var lastJob: Int { agentLines.keys.max() ?? 0 }
}

@Suite(.serialized) struct ScheduleDispatchTests {
    static let dispatched = "started in worker"

    @Test func aThousandWorkerTicksRunExactlyOnceEachSpreadOverTheWorkers() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 4))
        // overlap: allow, so that a run made slow by a busy machine does not make the next tick a (correct) skip.
        try await withCluster(scratch, environment: ["FIXTURE_TICKS": "counted:50ms:worker:0:allow"]) { cluster in
            #expect(await cluster.waitUntilReady())
            #expect(
                await waitUntil(within: .seconds(180)) { TickRecord(task: "counted", scratch: scratch).lastJob > 1005 },
                "\(scratch.read("logs/schedule.log").suffix(2000))")
            cluster.master.signal(SIGTERM)
            #expect(await cluster.exit() == .exited(0))
        }
        let record = TickRecord(task: "counted", scratch: scratch)
        var problems: [String] = []
        var perWorker: [String: Int] = [:]
        for id in 1...1000 {
            let started = record.lines(id, containing: Self.dispatched)
            let finished = record.lines(id, containing: "finished in")
            let runs = record.runs[id] ?? []
            if started.count != 1 || finished.count != 1 || runs.count != 1 {
                problems.append("job \(id): \(started.count) started, \(finished.count) finished, \(runs.count) runs: \(record.agentLines[id] ?? [])")
            }
            if let run = runs.first { perWorker[String(run.split(separator: " ")[0]), default: 0] += 1 }
        }
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(Set(perWorker.keys) == ["1", "2", "3", "4"], "\(perWorker)")
        #expect(perWorker.values.allSatisfy { $0 > 50 }, "\(perWorker)")
    }

    @Test func withWorkersKilledAtRandomEveryTickRanOnceOrIsRecordedAsFailedNoneTwiceNoneMissing() async throws {
        let scratch = try Scratch()
        // Ten kills within a minute must not reach the crash-loop limit (which would rightly stop everything).
        try scratch.config(clusterConfig(workers: 4, cluster: "  crashLoop: { exits: 100, within: 60s }"))
        // Runs of 30 ms every 50 ms: a kill often lands while one runs.
        try await withCluster(scratch, environment: ["FIXTURE_TICKS": "counted:50ms:worker:30:allow"]) { cluster in
            #expect(await cluster.waitUntilReady())
            var random = SystemRandomNumberGenerator()
            for round in 0..<10 {
                try await Task.sleep(for: .milliseconds(Int.random(in: 2000...4500, using: &random)))
                let workers = try await cluster.status().processes.filter { $0.role == .worker && $0.state == "ready" }
                // Every other kill hits the worker of the latest run (likely still running it), the others one at random.
                let latest = scratch.lines("ticks.log").last.flatMap { Int32($0.split(separator: " ")[4]) }
                let busy = workers.first { $0.pid == latest }
                if let victim = round % 2 == 0 ? (busy ?? workers.randomElement(using: &random)) : workers.randomElement(using: &random) {
                    kill(victim.pid, SIGKILL)
                }
            }
            #expect(await waitUntil(within: .seconds(180)) { TickRecord(task: "counted", scratch: scratch).lastJob > 1005 })
            cluster.master.signal(SIGTERM)
            #expect(await cluster.exit() == .exited(0))
        }
        let record = TickRecord(task: "counted", scratch: scratch)
        var problems: [String] = []
        var died = 0
        var redispatched = 0
        for id in 1...1000 {
            let lines = record.agentLines[id] ?? []
            let started = record.lines(id, containing: Self.dispatched)
            let finished = record.lines(id, containing: "finished in")
            let death = record.lines(id, containing: "failed: the worker died")
            let runs = record.runs[id] ?? []
            redispatched += record.lines(id, containing: "sending it to another worker").count
            if runs.count > 1 || started.count > 1 {
                problems.append("job \(id) twice: \(lines) runs \(runs)")
            } else if finished.count == 1 {
                if runs.count != 1 || !death.isEmpty { problems.append("job \(id) finished but: \(lines) runs \(runs)") }
            } else if death.count == 1 {
                died += 1  // ran at most once (it may have begun before its worker died)
            } else if lines.contains(where: { $0.contains("not run") || $0.contains("skipped") }) {
                if !runs.isEmpty { problems.append("job \(id) not run, yet ran: \(runs)") }
            } else {
                problems.append("job \(id) has no outcome: \(lines) runs \(runs)")
            }
        }
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(scratch.read("logs/app.log").components(separatedBy: "exited with signal 9 (SIGKILL)").count - 1 == 10)
        #expect(died > 0, "no kill landed on a running tick")
        print("killed 10 workers: \(died) runs recorded as failed by a death, \(redispatched) ticks sent to another worker")
    }

    @Test func anAllTickRunsOncePerLiveWorker() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 4))
        try await withCluster(scratch, environment: ["FIXTURE_TICKS": "everyone:100ms:all:0:allow"]) { cluster in
            #expect(await cluster.waitUntilReady())
            #expect(await waitUntil { TickRecord(task: "everyone", scratch: scratch).lastJob > 22 })
            cluster.master.signal(SIGTERM)
            #expect(await cluster.exit() == .exited(0))
        }
        let record = TickRecord(task: "everyone", scratch: scratch)
        for id in 1...20 {
            let runs = record.runs[id] ?? []
            #expect(Set(runs.map { $0.split(separator: " ")[0] }) == ["1", "2", "3", "4"] && runs.count == 4, "job \(id): \(runs)")
            #expect(record.lines(id, containing: Self.dispatched).count == 4)
            #expect(record.lines(id, containing: "finished in").count == 4, "\(record.agentLines[id] ?? [])")
            // A run's `started` line comes before its outcome's, even when the two arrive together (instant bodies).
            let lines = record.agentLines[id] ?? []
            for worker in 1...4 {
                let started = lines.firstIndex { $0.contains("started in worker \(worker) (") }
                let ended = lines.firstIndex { $0.contains("everyone in worker \(worker) (") }
                #expect(started != nil && ended != nil && started! < ended!, "job \(id), worker \(worker): \(lines)")
            }
        }
    }

    @Test func anAgentKilledMidRunFiresNoTickTwiceResumesTheTimersAndHearsOfTheRunInFlight() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 2))
        let ticks = "counted:50ms:worker:0,slow::worker:1500:immediate,once::worker:0:immediate"
        try await withCluster(scratch, environment: ["FIXTURE_TICKS": ticks]) { cluster in
            #expect(await cluster.waitUntilReady())
            #expect(await cluster.waitForLog("\\] slow started in worker", file: "logs/schedule.log"))
            let agent = try #require(try await cluster.status().processes.first { $0.role == .agent })
            kill(agent.pid, SIGKILL)
            let newAgent = try #require(await waitForProcess(cluster) { $0.role == .agent && $0.pid != agent.pid && $0.state == "ready" })
            // The run that was in flight reports to the new agent.
            #expect(await cluster.waitForLog("\\] slow in worker \\d+ \\(pid \\d+\\) finished in \\d+ ms \\(handed out by the previous agent\\)", file: "logs/schedule.log"))
            let before = TickRecord(task: "counted", scratch: scratch).runs.count
            // The timers resume in the new agent.
            #expect(await waitUntil { TickRecord(task: "counted", scratch: scratch).runs.count > before + 20 })
            #expect(scratch.read("logs/schedule.log").contains("schedule \(newAgent.pid) - [Timer] counted next at"))
            cluster.master.signal(SIGTERM)
            #expect(await cluster.exit() == .exited(0))
        }
        let counted = TickRecord(task: "counted", scratch: scratch)
        #expect(Set(counted.scheduled).count == counted.scheduled.count, "a scheduled time ran twice")
        // immediate runs once per service start, not again for the new agent.
        #expect(TickRecord(task: "once", scratch: scratch).scheduled.count == 1)
        #expect(TickRecord(task: "slow", scratch: scratch).scheduled.count == 1)
    }

    @Test func octopusRunGoesThroughTheRunningServiceForWorkerAndAllTasks() async throws {
        let scratch = try Scratch()
        try scratch.config(
            clusterConfig(
                workers: 2,
                schedule: """
                    schedule:
                      tasks:
                        everyone: { kind: log, interval: 1h, type: all, message: hello }
                        echo: { kind: command, interval: 1h, command: printf, args: ["ran\\\\n"] }
                        failing: { kind: command, interval: 1h, command: "exit 3", shell: true }
                        hang: { kind: command, interval: 1h, command: sleep, args: ["30"], timeout: 300ms, killGrace: 100ms }
                    """))
        try await withCluster(scratch, binary: octopusBinary) { cluster in
            #expect(await cluster.waitUntilReady())
            let all = try await runProgram(octopusBinary, ["run", "everyone"], in: scratch.path)
            #expect(all.status == .exited(0), "\(all.stderr)")
            #expect(all.stderr.components(separatedBy: "everyone in worker ").count - 1 == 2, "\(all.stderr)")
            #expect(all.stderr.contains("everyone: finished in "))
            let one = try await runProgram(octopusBinary, ["run", "echo"], in: scratch.path)
            #expect(one.status == .exited(0), "\(one.stderr)")
            #expect(one.stderr.components(separatedBy: "echo in worker ").count - 1 == 1, "\(one.stderr)")
            #expect(try await runProgram(octopusBinary, ["run", "failing"], in: scratch.path).status == .exited(1))
            #expect(try await runProgram(octopusBinary, ["run", "hang"], in: scratch.path).status == .exited(124))
            let unknown = try await runProgram(octopusBinary, ["run", "nope"], in: scratch.path)
            #expect(unknown.status == .exited(2))
            #expect(unknown.stderr.contains("no such task"))
            // The runs happened in the service's workers: their lines carry a worker id.
            #expect(scratch.read("logs/schedule.log").contains("schedule.echo"))
            let status = try await cluster.status()
            let echo = try #require(status.schedules.first { $0.name == "echo" })
            #expect(echo.runs == 1 && echo.lastRunBy?.hasPrefix("worker ") == true, "\(echo)")
            #expect(status.schedules.first { $0.name == "everyone" }?.runs == 1)
        }
    }
}

@Suite(.serialized) struct RetryTests {
    @Test func aRunWhoseWorkerDiedRunsAgainElsewhereWithRetry() async throws {
        let scratch = try Scratch()
        try scratch.config(clusterConfig(workers: 2))
        // The run lasts until the test creates `release`: the kill always lands while it runs.
        try await withCluster(scratch, environment: ["FIXTURE_TICKS": "careful::worker:-1:immediate:retry"]) { cluster in
            #expect(await cluster.waitUntilReady())
            #expect(await waitUntil { scratch.lines("ticks.log").count == 1 })
            let first = try #require(scratch.lines("ticks.log").first.flatMap { Int32($0.split(separator: " ")[4]) })
            kill(first, SIGKILL)
            #expect(await cluster.waitForLog("\\[Job#1\\] careful: running it again in another worker \\(retry: true\\)", file: "logs/schedule.log"))
            #expect(await waitUntil { scratch.lines("ticks.log").count == 2 })
            _ = FileManager.default.createFile(atPath: scratch.path + "/release", contents: nil)
            #expect(await cluster.waitForLog("\\[Job#1\\] careful in worker \\d+ \\(pid \\d+\\) finished in", file: "logs/schedule.log"))
            let runs = scratch.lines("ticks.log")
            #expect(runs.count == 2, "\(runs)")
            #expect(runs.last.flatMap { Int32($0.split(separator: " ")[4]) } != first)
            #expect(scratch.read("logs/schedule.log").contains("(pid \(first)) failed: the worker died"))
        }
    }
}
