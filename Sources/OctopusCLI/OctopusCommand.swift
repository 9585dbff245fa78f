import ArgumentParser
import Foundation
import Octopus
import ServiceLifecycle
import UnixSignals

@main
struct OctopusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "octopus",
        abstract: "Run and inspect an Octopus service: logging, schedules and shared connections for Swift servers.",
        discussion: """
            Every verb reads the configuration in ./config (config.default.yaml or .json, overlaid by \
            config.<env>.yaml; --config-dir and --env change that). `octopus help VERB` or `octopus VERB --help` \
            says what a verb does, what it writes and how it exits.
            """,
        version: OctopusVersion.string,
        subcommands: [
            Start.self, Stop.self, Status.self, Config.self, Log.self, Tail.self, Archive.self, Cron.self, Run.self,
        ]
    )
}

/// The options every verb that reads configuration takes.
struct ConfigOptions: ParsableArguments {
    @Option(name: .customLong("config-dir"), help: "The configuration directory.")
    var configDirectory = "config"

    @Option(name: .customLong("env"), help: "The environment whose config.<env>.yaml overlays the default (default: $OCTOPUS_ENV, else local).")
    var environment: String?

    /// Loads the configuration, or prints every issue on stderr and exits 2.
    func load() throws -> OctopusConfiguration {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: configDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            let here = FileManager.default.currentDirectoryPath
            printError("""
                octopus: no configuration directory "\(configDirectory)" in \(here).
                Run octopus where your config/ directory is (it holds config.default.yaml), or pass --config-dir DIR.
                """)
            throw ExitCode(2)
        }
        do {
            let configuration = try OctopusConfiguration.load(directory: configDirectory, environment: environment)
            // Said once, by the process the user started, not again by every child of a cluster.
            if !ChildLaunch.startedByMaster {
                for warning in configuration.log.warnings { printError("warning: \(warning)") }
            }
            return configuration
        } catch {
            printError(error.description)
            throw ExitCode(2)
        }
    }
}

extension ConfigOptions {
    /// Loads the configuration and opens its log system; a file that cannot be opened exits 1. While the service runs
    /// (its pid file is locked), this process writes the shared files but never rolls or recovers them: the service's
    /// agent owns that.
    func loadWithLogging(schedules: Bool) throws -> (OctopusConfiguration, LogSystem) {
        let configuration = try load()
        return (configuration, try openLogging(configuration, schedules: schedules))
    }

    /// The log system of `configuration` (with the schedule log only for a command that runs schedules); a file that
    /// cannot be opened exits 1.
    func openLogging(_ configuration: OctopusConfiguration, schedules: Bool) throws -> LogSystem {
        let running = ClusterControl.isRunning(runDirectory: configuration.cluster.runDirectory)
        do {
            let log = schedules ? configuration.log : configuration.logWithoutSchedules
            return try LogSystem(log, coordination: running ? .follower { _ in } : .alone)
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

extension OctopusCommand {
    struct Config: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the configuration: `octopus config check` prints it resolved, or every error.",
            subcommands: [Check.self],
            defaultSubcommand: Check.self
        )

        struct Check: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print the resolved configuration, or every error with its key path (exit status 2).",
                discussion: """
                    Reads config.default.* overlaid by config.<env>.* (deep merge) and checks every key of every \
                    section (log, schedule, cluster), as start does, without opening a file or starting anything: \
                    whatever start would refuse, this refuses. Prints the merged configuration as JSON on stdout, \
                    warnings and "configuration OK" on stderr.
                    Exit status: 0 valid, 2 invalid (each error with its key path, file and line) or no config directory.
                    """
            )

            @OptionGroup var options: ConfigOptions

            func run() throws {
                let configuration = try options.load()
                print(configuration.value.prettyJSON)
                printError("configuration OK (environment \"\(configuration.environment)\", directory \"\(options.configDirectory)\")")
            }
        }
    }

    struct Log: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write one event through the configured appenders.",
            discussion: """
                The event goes to the appenders of its category as any logger's would (files are created and rolled \
                as configured; while the service runs, this process writes the files but leaves rolling to the \
                agent). Example: octopus log --category db --level WARN "slow query: 2.3 s"
                Exit status: 0 written, 1 a file could not be opened, 2 a bad configuration or level.
                """
        )

        @OptionGroup var options: ConfigOptions

        @Option(name: .long, help: "The category (logger label).")
        var category = "default"

        @Option(name: .long, help: "The level: TRACE, DEBUG, INFO, WARN, ERROR, FATAL, MARK or a level of the configuration.")
        var level = "INFO"

        @Argument(help: "The message; several words are joined with spaces.")
        var message: [String]

        func run() throws {
            let (_, logging) = try options.loadWithLogging(schedules: false)
            defer { logging.shutdownNow() }
            guard let resolved = logging.levels.level(named: level) else {
                printError("unknown level \"\(level)\"; levels are \(logging.levels.levels.map(\.name).joined(separator: ", "))")
                throw ExitCode(2)
            }
            logging.log(resolved, message.joined(separator: " "), category: category)
        }
    }

    struct Archive: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compress a log file to FILE.gz the way rotation does: never a truncated archive, never a lost file.",
            discussion: """
                The archive is written to FILE.gz.tmp-PID, synced, renamed to FILE.gz (never over an existing \
                file), and only then is FILE removed. Example: octopus archive logs/app.log.3
                Exit status: 0 every file compressed, 1 one could not be (its error on stderr, the file left as it was).
                """
        )

        @Option(name: .long, help: "The gzip level, 1 (fastest) to 9 (smallest).")
        var level = 6

        @Argument(help: "The files to compress.")
        var files: [String]

        func run() throws {
            var failed = false
            for file in files {
                do {
                    try LogArchive.compress(file, level: level)
                } catch {
                    printError("octopus archive: \(error)")
                    failed = true
                }
            }
            if failed { throw ExitCode(1) }
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the service: a master, an agent and workers, until SIGTERM or SIGINT.",
            discussion: """
                Needs a config/ directory (config.default.yaml: log, schedule and cluster sections; `octopus config \
                check` validates it). The master starts the agent (which runs the schedules' timers and rolls the \
                log files), then cluster.workers workers (default: one per CPU), restarts any that dies, and stops \
                them all gracefully on SIGTERM or SIGINT (a second signal stops at once).
                Writes: the configured log files (default logs/), the schedule log (logs/schedule.log unless the \
                schedule category is configured), and in cluster.runDirectory (default run/, mode 0700) the pid \
                file octopus.pid and the control socket that stop, status and run use. With --daemon, the \
                service's own stdout and stderr go to logs/octopus.stdout.log and logs/octopus.stderr.log.
                Exit status: 0 stopped gracefully, 1 could not start (or stopped by a second signal), 2 a bad \
                configuration or option.
                """
        )

        @OptionGroup var options: ConfigOptions
        @OptionGroup var start: StartOptions

        func run() async throws {
            let configuration = try options.load()
            let app = OctopusApplication(configuration: configuration, configDirectory: options.configDirectory)
            let code = await app.start(start)
            if code != 0 { throw ExitCode(code) }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the running service gracefully and wait until every process of it is gone.",
            discussion: """
                Asks the master through the control socket in cluster.runDirectory (SIGTERM if it does not answer), \
                which runs the beforeClose hooks, stops the workers, then the agent, and flushes the logs.
                Exit status: 0 stopped (or nothing ran), 1 something still runs after the timeout.
                """
        )

        @OptionGroup var options: ConfigOptions
        @OptionGroup var stop: StopOptions

        func run() async throws {
            let configuration = try options.load()
            let code = await ClusterCommands.stop(runDirectory: configuration.cluster.runDirectory, options: stop)
            if code != 0 { throw ExitCode(code) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show every process of the running service (role, worker id, pid, uptime, restarts, state, memory) and every schedule.",
            discussion: """
                Also shows per schedule: its type, next fire time, last outcome and which worker ran it, runs, \
                failures and ticks not run. --json prints the same as one JSON object.
                Exit status: 0 running, 3 not running, 1 the master did not answer.
                """
        )

        @OptionGroup var options: ConfigOptions
        @OptionGroup var status: StatusOptions

        func run() async throws {
            let configuration = try options.load()
            let code = await ClusterCommands.status(runDirectory: configuration.cluster.runDirectory, options: status)
            if code != 0 { throw ExitCode(code) }
        }
    }
}

