import Foundation
import Testing

let scheduleConfig = """
    log:
      appenders:
        file: { type: file, filename: logs/app.log, layout: { type: pattern, pattern: "[%p] %c - %m%X" } }
        scheduleFile: { type: file, filename: logs/schedule.log, layout: { type: pattern, pattern: "[%p] %c - %m" } }
      categories:
        default: { appenders: [file], level: INFO }
        schedule: { appenders: [scheduleFile], inherit: false }
    schedule:
      shutdownTimeout: 20s
      tasks:
        heartbeat: { kind: log, interval: 200ms, type: all, immediate: true, message: alive }
        echo:
          kind: command
          cron: "* * * * * *"
          command: printf
          args: ["first line\\\\nsecond line\\\\n"]
        slow:
          kind: command
          immediate: true
          command: "until [ -e release ]; do sleep 0.02; done; echo slow done"
          shell: true
        failing: { kind: command, command: "echo broken >&2; exit 3", shell: true, interval: 1h }
        hang: { kind: command, command: sleep, args: ["30"], interval: 1h, timeout: 300ms, killGrace: 100ms }
        prodOnly: { kind: log, interval: 100ms, message: never here, env: [prod] }
    """

@Suite struct ScheduleCommandTests {
    @Test func startRunsTheSchedulesAndStopsCleanlyOnSIGTERM() async throws {
        let dir = try ScratchDirectory()
        try dir.config("config.default.yaml", scheduleConfig)
        let process = try startOctopus(in: dir.path)
        // Wait (bounded) until the heartbeat has ticked and the command task has run once.
        var ready = false
        for _ in 0..<400 where !ready {
            let log = dir.read("logs/schedule.log")
            ready = log.contains("echo in worker") && log.components(separatedBy: "heartbeat in worker").count > 3
            if !ready { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(ready, "\(dir.read("logs/schedule.log"))")
        process.terminate()  // SIGTERM while `slow` is still running: it runs until the file `release` exists
        var draining = false
        for _ in 0..<400 where !draining {
            // The worker running `slow` lets it finish before it exits (and the master waits for the worker). A tick
            // of `heartbeat` or `echo` may be running beside it.
            draining = dir.read("logs/schedule.log").range(
                of: #"\[worker \d+\] stopping: waiting for \d+ running job\(s\)"#, options: .regularExpression) != nil
            if !draining { try await Task.sleep(for: .milliseconds(50)) }
        }
        // On failure, what every process said (app.log holds each one's own lines, the cluster's among them).
        #expect(draining, "app.log:\n\(dir.read("logs/app.log"))")
        #expect(process.isRunning)
        _ = FileManager.default.createFile(atPath: dir.path + "/release", contents: nil)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
        let log = dir.read("logs/schedule.log")
        let lines = log.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("[INFO] schedule - [Timer] heartbeat next at ") })
        #expect(lines.contains { $0.hasPrefix("[INFO] schedule - [Timer] echo next at ") && $0.hasSuffix(".000" + ($0.suffix(6))) })
        // The agent's lines say which worker ran each tick.
        #expect(lines.contains { $0.range(of: #"^\[INFO\] schedule - \[Job#\d+\] heartbeat started in worker \d+ \(pid \d+\) \(scheduled .+, late \d+ ms\) \[immediate\]$"#, options: .regularExpression) != nil })
        #expect(lines.contains { $0.range(of: #"^\[INFO\] schedule - \[Job#\d+\] echo in worker \d+ \(pid \d+\) finished in \d+ ms$"#, options: .regularExpression) != nil })
        // The command's output, line by line, in the task's category; its exit status and duration.
        #expect(lines.contains("[INFO] schedule.echo - first line"))
        #expect(lines.contains("[INFO] schedule.echo - second line"))
        #expect(lines.contains { $0.hasPrefix("[INFO] schedule.echo - printf exited with status 0 in ") })
        #expect(lines.contains("[INFO] schedule.heartbeat - alive"))
        // The running task finished before the process exited, and its lines were flushed.
        #expect(lines.contains("[INFO] schedule.slow - slow done"))
        #expect(lines.contains { $0.range(of: #"\] slow in worker \d+ \(pid \d+\) finished in \d+ ms$"#, options: .regularExpression) != nil })
        #expect(lines.contains { $0.range(of: #"^\[INFO\] schedule - \[worker \d+\] stopping: waiting for \d+ running job\(s\)$"#, options: .regularExpression) != nil })
        #expect(lines.contains(#"[INFO] schedule - [Timer] prodOnly does not run in env "local" (env: prod)"#))
        #expect(!log.contains("never here"))
        #expect(dir.read("logs/app.log").hasSuffix("[INFO] octopus.master - master exiting with status 0 role=master\n"))
    }

    @Test func aWorkerKilledWhileItFinishesATickAtTheStopHasItsRunRecordedAndTheAgentDoesNotWaitForIt() async throws {
        let dir = try ScratchDirectory()
        try dir.config("config.default.yaml", scheduleConfig)
        let process = try startOctopus(in: dir.path)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }  // its children die with it
        // The worker that runs `slow` (it runs until the file `release` exists, which it never does here).
        let started = #/\] slow started in (worker (\d+) \(pid (\d+)\))/#
        var runner: (name: String, id: Substring, pid: Int32)?
        for _ in 0..<400 where runner == nil {
            if let match = dir.read("logs/schedule.log").firstMatch(of: started), let pid = Int32(match.3) {
                runner = (String(match.1), match.2, pid)
            } else {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let worker = try #require(runner, "\(dir.read("logs/schedule.log"))")
        process.terminate()
        var draining = false
        for _ in 0..<400 where !draining {
            draining = dir.read("logs/schedule.log").range(
                of: #"\[worker "# + worker.id + #"\] stopping: waiting for \d+ running job\(s\)"#, options: .regularExpression) != nil
            if !draining { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(draining, "\(dir.read("logs/schedule.log"))")
        // Killed while the master waits for it: the agent hears of the death, records the run as failed and stops
        // without waiting for an outcome that cannot come.
        kill(worker.pid, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
        let log = dir.read("logs/schedule.log")
        #expect(log.contains("slow in \(worker.name) failed: the worker died"), "\(log)")
        let app = dir.read("logs/app.log")
        #expect(app.contains("\(worker.name) exited with signal 9 (SIGKILL)"), "\(app)")
        #expect(!app.contains("seconds after SIGTERM; sending SIGKILL"), "\(app)")
    }

    @Test func runRunsOneTaskNowAndExitsWithItsOutcome() async throws {
        let dir = try ScratchDirectory()
        try dir.config("config.default.yaml", scheduleConfig)
        _ = FileManager.default.createFile(atPath: dir.path + "/release", contents: nil)
        let ok = try await octopus(["run", "echo"], in: dir.path)
        #expect(ok.status == 0)
        #expect(ok.stderr.contains("echo: finished in "))
        #expect(dir.read("logs/schedule.log").contains("[INFO] schedule.echo - second line\n"))
        let failing = try await octopus(["run", "failing"], in: dir.path)
        #expect(failing.status == 1)
        #expect(failing.stderr.contains("failing: failed in "))
        #expect(failing.stderr.contains("exited with status 3"))
        #expect(dir.read("logs/schedule.log").contains("[WARN] schedule.failing - broken\n"))
        let hang = try await octopus(["run", "hang"], in: dir.path)
        #expect(hang.status == 124)
        #expect(hang.stderr.contains("hang: timed out after "))
        let unknown = try await octopus(["run", "nope"], in: dir.path)
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains(#"task "nope": no such task; tasks are heartbeat, echo, slow, failing, hang, prodOnly"#))
    }

    @Test func cronPrintsTheNextTimesWithTheZonesOffset() async throws {
        let outcome = try await octopus(["cron", "0 9 * * MON-FRI", "--tz", "Asia/Kolkata", "--from", "2026-11-21T12:00:00", "-n", "3"])
        #expect(outcome.status == 0)
        #expect(outcome.stdout == "2026-11-23T09:00:00+05:30\n2026-11-24T09:00:00+05:30\n2026-11-25T09:00:00+05:30\n")
        let dst = try await octopus(["cron", "*/30 * * * *", "--tz", "America/New_York", "--from", "2026-11-01T00:30:00-04:00", "-n", "4"])
        #expect(dst.stdout == "2026-11-01T01:00:00-04:00\n2026-11-01T01:30:00-04:00\n2026-11-01T01:00:00-05:00\n2026-11-01T01:30:00-05:00\n")
        let defaultCount = try await octopus(["cron", "@daily", "--tz", "UTC", "--from", "2026-11-21T12:00:00Z"])
        #expect(defaultCount.stdout.split(separator: "\n").count == 5)
        let previous = try await octopus(["cron", "0 0 * * *", "--tz", "UTC", "--from", "2026-11-21T12:00:00Z", "-n", "2", "--previous"])
        #expect(previous.stdout == "2026-11-21T00:00:00+00:00\n2026-11-20T00:00:00+00:00\n")
    }

    @Test(arguments: [
        (["cron", "0 61 * * * *"], #"invalid cron expression "0 61 * * * *": minute "61" is out of range 0-59"#),
        (["cron", "@every5m"], "unknown preset"),
        (["cron", "* * * * *", "--tz", "Nowhere/City"], "unknown time zone"),
        (["cron", "* * * * *", "--from", "yesterday"], "is not an ISO-8601 time"),
    ])
    func cronRefusesBadInputWithExit2(_ arguments: [String], _ message: String) async throws {
        let outcome = try await octopus(arguments)
        #expect(outcome.status == 2)
        #expect(outcome.stdout.isEmpty)
        #expect(outcome.stderr.contains(message), "\(outcome.stderr)")
    }

    @Test func configCheckValidatesTheSchedules() async throws {
        let dir = try ScratchDirectory()
        try dir.config("config.default.yaml", """
            log:
              appenders: { out: { type: stdout } }
              categories: { default: { appenders: [out], level: INFO } }
            schedule:
              tasks:
                a: { kind: log, interval: 0s, message: x }
                b: { kind: command, cron: "0 0 31 2 *", command: "true" }
            """)
        let outcome = try await octopus(["config", "check"], in: dir.path)
        #expect(outcome.status == 2)
        #expect(outcome.stderr.contains(#"invalid interval "0s": must be more than zero at schedule.tasks.a.interval (config/config.default.yaml:6)"#), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("it never fires"))
        let start = try await octopus(["start"], in: dir.path)
        #expect(start.status == 2)
    }

    @Test func theRepositoryDefaultRunsItsTasks() async throws {
        let outcome = try await octopus(["run", "heartbeat"], in: repositoryRoot.path)
        #expect(outcome.status == 0)
    }
}
