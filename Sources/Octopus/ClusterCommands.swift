public import ArgumentParser
import Foundation
import OctopusCluster
import OctopusSchedule

/// The options of `start`.
public struct StartOptions: ParsableArguments {
    @Option(name: .long, help: "How many workers (default: cluster.workers in the configuration, else one per CPU).")
    public var workers: Int?

    @Flag(
        name: .long,
        help: """
            Run in the background: return once every process is ready (exit 0), or say why the start failed (exit 1). \
            The daemon's stdout and stderr are appended to logs/octopus.stdout.log and logs/octopus.stderr.log.
            """)
    public var daemon = false

    public init() {}
}

/// The options of `stop`.
public struct StopOptions: ParsableArguments {
    @Option(name: .long, help: "How long to wait for every process to be gone, e.g. 30s or 2m (default: 60s).")
    public var timeout = "60s"

    public init() {}
}

/// The options of `status`.
public struct StatusOptions: ParsableArguments {
    @Flag(name: .long, help: "Print the status as JSON.")
    public var json = false

    public init() {}
}

/// `stop` and `status`, shared by the `octopus` command and every application's own verbs.
public enum ClusterCommands {
    /// Stops the service whose run directory is `runDirectory`: 0 once every process is gone (or nothing ran), 1 with
    /// what is still alive after the timeout, 2 on a bad option.
    public static func stop(runDirectory: String, options: StopOptions) async -> Int32 {
        let timeout: Duration
        do {
            timeout = try Interval(parsing: options.timeout).duration
        } catch {
            printError("octopus stop: --timeout: \(error)")
            return 2
        }
        do {
            let report = try await ClusterControl.stop(runDirectory: runDirectory, timeout: timeout)
            if report.stillAlive.isEmpty {
                print("octopus stopped (master pid \(report.masterPID))\(report.signalled ? "; its control socket did not answer, so it was sent SIGTERM" : "")")
                return 0
            }
            printError("octopus stop: still running after \(timeout): \(report.stillAlive.joined(separator: ", "))")
            return 1
        } catch where error.kind == .notRunning {
            printError(error.message)
            return 0
        } catch {
            printError("octopus stop: \(error)")
            return 1
        }
    }

    /// Prints the state of the running service: 0 when it runs, 3 when it does not (as an LSB init script's
    /// `status`), 1 when its master does not answer.
    public static func status(runDirectory: String, options: StatusOptions) async -> Int32 {
        let status: ClusterStatus
        do {
            status = try await ClusterControl.status(runDirectory: runDirectory)
        } catch where error.kind == .notRunning {
            if options.json { print(#"{"state":"not running"}"#) }
            printError(error.message)
            return 3
        } catch {
            printError("octopus status: \(error)")
            return 1
        }
        if options.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            if let data = try? encoder.encode(status) { print(String(decoding: data, as: UTF8.self)) }
            return 0
        }
        print(render(status))
        return 0
    }

    /// The status as a table.
    static func render(_ status: ClusterStatus) -> String {
        var rows = [["ROLE", "WORKER", "PID", "STATE", "UPTIME", "RESTARTS", "RSS"]]
        for process in [status.master] + status.processes {
            rows.append([
                process.role.rawValue, process.workerID.map(String.init) ?? "-", String(process.pid), process.state,
                duration(process.uptimeSeconds), String(process.restarts), process.residentBytes.map(size) ?? "-",
            ])
        }
        var text = "octopus is \(status.state) (run directory \(status.runDirectory))\n"
        if !status.listening.isEmpty { text += "listening for the workers on \(status.listening.joined(separator: ", "))\n" }
        text += table(rows)
        if status.droppedMessages > 0 { text += "\nmessenger messages dropped (queues full): \(status.droppedMessages)" }
        if let error = status.schedulesError {
            text += "\nschedules: \(error)"
        } else if status.schedules.isEmpty {
            text += "\nschedules: none"
        } else {
            var schedule = [["TASK", "TYPE", "SCHEDULE", "NEXT", "LAST OUTCOME", "BY", "RUNS", "FAILED", "NOT RUN"]]
            for task in status.schedules {
                schedule.append([
                    task.name, task.type, task.schedule,
                    task.state == "active" ? (task.nextFire.map { ISOTime.format($0, in: .current, fractional: true) } ?? "-") : task.state,
                    task.lastOutcome?.description ?? "-", task.lastRunBy ?? "-", String(task.runs), String(task.failures),
                    String(task.notRun),
                ])
            }
            text += "\n\n" + table(schedule)
        }
        return text
    }

    private static func table(_ rows: [[String]]) -> String {
        let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    private static func duration(_ seconds: Double) -> String {
        let total = Int(seconds)
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(total % 60)s" }
        if total < 86400 { return "\(total / 3600)h\(total % 3600 / 60)m" }
        return "\(total / 86400)d\(total % 86400 / 3600)h"
    }

    private static func size(_ bytes: Int) -> String {
        String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }
}

/// An application's own verbs: `start` (the default), `stop`, `status`.
struct ApplicationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "An Octopus application: a master, an agent and workers.",
        subcommands: [Start.self, Stop.self, Status.self],
        defaultSubcommand: Start.self)

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the service (master, agent and workers) until SIGTERM or SIGINT.")
        @OptionGroup var options: StartOptions
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the running service gracefully and wait until every process is gone.")
        @OptionGroup var options: StopOptions
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show every process of the running service and every schedule.")
        @OptionGroup var options: StatusOptions
    }
}
