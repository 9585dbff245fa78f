import ArgumentParser
import Foundation
import Logging
public import OctopusCluster
public import OctopusConfig
import OctopusLog
import OctopusSchedule
import OctopusSystem
public import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// An Octopus application: a user's own executable is the cluster. The same `main` runs in every process (the
/// master, the agent, each worker); what it registers — schedules, messenger handlers, the services workers and the
/// agent run, lifecycle hooks — is known in every process, and the role the process was started in decides what runs.
///
/// ```swift
/// import Octopus
///
/// @main struct Shop {
///     static func main() async throws {
///         let app = try OctopusApplication(configDirectory: "config")     // reads config/, strict
///         app.schedules.register { CleanSessions(store: SessionStore()) }  // made in the process that runs it
///         app.messenger.on("refresh-cache") { message in … }
///         app.workers { context in [HTTPServer(port: 8080, logger: context.logger)] }
///         app.agent { context in [] }
///         await app.run()      // `start` (the default), `stop` or `status`, in the role this process has
///     }
/// }
/// ```
///
/// Lifecycle hooks run in order, each within `cluster.startupTimeout` (a hook that does not finish in time fails the
/// start with a message naming it and the role): `configWillLoad` (the last moment to change the configuration in
/// code) and `configDidLoad` in every process, the master included; `didLoad`, `willReady`, `didReady` (after the
/// process's services have started), `serverDidReady` (once the whole cluster is ready) and `beforeClose` (at a
/// graceful stop, after the services have stopped and before logging is flushed) in the agent and the workers, where
/// application code runs.
public final class OctopusApplication: Sendable {
    public typealias Hook = @Sendable (ProcessContext) async throws -> Void
    public typealias ServiceFactory = @Sendable (ProcessContext) async throws -> [any Service]

    enum Stage: String, CaseIterable {
        case didLoad, willReady, didReady, serverDidReady, beforeClose
    }

    private struct Registrations {
        var configWillLoad: [@Sendable (inout OctopusConfiguration) async throws -> Void] = []
        var configDidLoad: [@Sendable (OctopusConfiguration) async throws -> Void] = []
        var hooks: [Stage: [Hook]] = [:]
        var workerServices: [ServiceFactory] = []
        var agentServices: [ServiceFactory] = []
        var clients: [SharedClientEntry] = []
    }

    /// A cluster client, type-erased: how to start it in this process and close it at the stop.
    private struct SharedClientEntry: Sendable {
        let name: String
        let start: @Sendable (ClusterClientMode, _ invokeTimeout: Duration, _ connectTimeout: Duration) async throws -> Void
        let close: @Sendable () async -> Void
    }

    /// The configuration as read from `configDirectory` (before any `configWillLoad` hook).
    public let configuration: OctopusConfiguration
    public let configDirectory: String
    /// The command line (verbs and options; children are started with the same one).
    public let arguments: [String]
    public let messenger = Messenger()
    public let schedules = ScheduleRegistry()
    private let registrations = Mutex(Registrations())

    /// Reads and checks the configuration (every section, every error at once: nothing starts on a bad one).
    ///
    /// - Parameters:
    ///   - environment: the overlay `config.<environment>.yaml` (default: `$OCTOPUS_ENV`, else `local`).
    ///   - arguments: the command line; `start` (the default), `stop` or `status`.
    public init(
        configDirectory: String = "config", environment: String? = nil, arguments: [String] = CommandLine.arguments
    ) throws(ConfigurationError) {
        self.configDirectory = configDirectory
        self.arguments = arguments
        self.configuration = try OctopusConfiguration.load(directory: configDirectory, environment: environment)
    }

    /// Builds an application on a configuration already read.
    public init(configuration: OctopusConfiguration, configDirectory: String = "config", arguments: [String] = CommandLine.arguments) {
        self.configDirectory = configDirectory
        self.arguments = arguments
        self.configuration = configuration
    }

    // MARK: Registration

    /// The services every worker runs (an HTTP server, consumers…), made in each worker.
    public func workers(_ make: @escaping ServiceFactory) {
        registrations.withLock { $0.workerServices.append(make) }
    }

    /// The services the agent runs (long connections, background work that must run once).
    public func agent(_ make: @escaping ServiceFactory) {
        registrations.withLock { $0.agentServices.append(make) }
    }

    /// Changes the configuration in code before anything reads it (every process).
    public func configWillLoad(_ hook: @escaping @Sendable (inout OctopusConfiguration) async throws -> Void) {
        registrations.withLock { $0.configWillLoad.append(hook) }
    }

    /// Sees the final configuration (every process).
    public func configDidLoad(_ hook: @escaping @Sendable (OctopusConfiguration) async throws -> Void) {
        registrations.withLock { $0.configDidLoad.append(hook) }
    }

    /// Runs once logging is up and the process has joined the cluster, before its services are made.
    public func didLoad(_ hook: @escaping Hook) { add(.didLoad, hook) }
    /// Runs just before the services start.
    public func willReady(_ hook: @escaping Hook) { add(.willReady, hook) }
    /// Runs after the services have started; the process reports ready when every such hook has returned.
    public func didReady(_ hook: @escaping Hook) { add(.didReady, hook) }
    /// Runs once every process of the cluster is ready.
    public func serverDidReady(_ hook: @escaping Hook) { add(.serverDidReady, hook) }
    /// Runs at a graceful stop, after the services have stopped and before logging is flushed.
    public func beforeClose(_ hook: @escaping Hook) { add(.beforeClose, hook) }

    /// A long connection the whole cluster shares (cluster-client's model): `makeClient` runs in the agent only, which
    /// leads; every worker uses it through a socket in the run directory, with the same API. Usable from `didLoad`
    /// on, in the agent and the workers (started before the hooks, closed after `beforeClose`); an agent that
    /// replaces a dead one leads again and the workers subscribe again. Invokes default to
    /// `cluster.client.invokeTimeout`.
    ///
    /// ```swift
    /// let registry = app.clusterClient("registry") { try await Registry.connect(to: "registry.internal:2181") }
    /// app.workers { context in
    ///     let updates = registry.subscribe("services/payments")   // one subscription at the agent, for everyone
    ///     …
    /// }
    /// ```
    public func clusterClient<Connection: SharedConnection>(
        _ name: String, options: ClusterClientOptions = ClusterClientOptions(),
        _ makeClient: @escaping @Sendable () async throws -> Connection
    ) -> ClusterClient<Connection> {
        let client = ClusterClient(name: name, options: options, logger: Logger(label: "octopus.client"), makeClient: makeClient)
        let entry = SharedClientEntry(
            name: name,
            start: { mode, invokeTimeout, connectTimeout in
                client.configure {
                    $0.invokeTimeout = invokeTimeout
                    $0.connectTimeout = connectTimeout
                }
                try await client.start(mode)
            },
            close: { await client.close() })
        registrations.withLock { $0.clients.append(entry) }
        return client
    }

    private func add(_ stage: Stage, _ hook: @escaping Hook) {
        registrations.withLock { $0.hooks[stage, default: []].append(hook) }
    }

    // MARK: Running

    /// Runs the verb the command line names — `start` (the default), `stop` or `status` — in the role this process
    /// was started in, and exits with its status.
    public func run() async -> Never {
        let code: Int32
        do {
            let command = try ApplicationCommand.parseAsRoot(Array(arguments.dropFirst()))
            switch command {
            case let stop as ApplicationCommand.Stop:
                code = await ClusterCommands.stop(runDirectory: configuration.cluster.runDirectory, options: stop.options)
            case let status as ApplicationCommand.Status:
                code = await ClusterCommands.status(runDirectory: configuration.cluster.runDirectory, options: status.options)
            case let start as ApplicationCommand.Start:
                code = await self.start(start.options)
            default:
                code = await self.start()
            }
        } catch {
            ApplicationCommand.exit(withError: error)
        }
        exit(code)
    }

    /// `start` with the command line's options.
    public func start(_ options: StartOptions) async -> Int32 {
        await start(workers: options.workers, daemon: options.daemon)
    }

    /// `start` in this process's role: the master (or, with `daemon`, its launcher) when the process was started by
    /// hand; the agent or a worker when a master started it (with this process's command line). Returns the exit
    /// status.
    ///
    /// - Parameter workers: overrides `cluster.workers`.
    public func start(workers: Int? = nil, daemon: Bool = false) async -> Int32 {
        let launch: ChildLaunch?
        do {
            launch = try ChildLaunch.fromEnvironment()
        } catch {
            printError("octopus: \(error)")
            return 1
        }
        if let launch { return await runChild(launch) }
        if let workers, workers < 1 {
            printError("octopus: --workers must be 1 or more")
            return 2
        }
        if daemon, Daemon.notifyDescriptor == nil {
            return await Daemon.launch(arguments: arguments, cluster: configuration.cluster)
        }
        return await runMaster(workers: workers)
    }

    private func runMaster(workers: Int?) async -> Int32 {
        let identity = ProcessIdentity(role: .master, pid: getpid())
        var config: OctopusConfiguration
        do {
            config = try await loadConfiguration(identity)
        } catch {
            printError("octopus: \(error)")
            Daemon.notifyFailed("\(error)")
            return 1
        }
        if let workers { config.cluster.workers = workers }
        let rotation = RotationRelay()
        let logging: LogSystem
        do {
            LogSystem.truncateFilesAtStart(config.log)  // flags: w — once per service start, before any process writes
            logging = try LogSystem(config.log, coordination: rotation.follower)
        } catch {
            printError("octopus: \(error)")
            Daemon.notifyFailed("\(error)")
            return 1
        }
        logging.bootstrap(metadataProvider: ClusterMaster.metadataProvider(for: identity))
        let code = await ClusterMaster.run(
            configuration: config, logging: logging, rotation: rotation, arguments: arguments,
            ready: { pid in Daemon.notifyReady(pid) }, failed: { Daemon.notifyFailed($0) })
        try? await logging.shutdown()
        return code
    }

    /// The configuration after the `configWillLoad` and `configDidLoad` hooks.
    private func loadConfiguration(_ identity: ProcessIdentity) async throws(ClusterError) -> OctopusConfiguration {
        let (willLoad, didLoad) = registrations.withLock { ($0.configWillLoad, $0.configDidLoad) }
        var config = configuration
        for (index, hook) in willLoad.enumerated() {
            let current = config
            config = try await withDeadline(configuration.cluster.startupTimeout, hook: "configWillLoad", index, identity) {
                var changed = current
                try await hook(&changed)
                return changed
            }
        }
        for (index, hook) in didLoad.enumerated() {
            let current = config
            try await withDeadline(config.cluster.startupTimeout, hook: "configDidLoad", index, identity) {
                try await hook(current)
            }
        }
        return config
    }

    private func runHooks(_ stage: Stage, _ context: ProcessContext) async throws(ClusterError) {
        let hooks = registrations.withLock { $0.hooks[stage] ?? [] }
        for (index, hook) in hooks.enumerated() {
            try await withDeadline(context.configuration.cluster.startupTimeout, hook: stage.rawValue, index, context.identity) {
                try await hook(context)
            }
        }
    }

    /// The agent or a worker: joins the master, starts what the role runs, reports ready, and stops gracefully on
    /// SIGTERM (the master replaces it); when the master is gone, it ends at once.
    private func runChild(_ launch: ChildLaunch) async -> Int32 {
        let identity = launch.identity
        func failed(_ message: String) -> Int32 {
            printError("octopus: \(identity): \(message)")
            return 1
        }
        let config: OctopusConfiguration
        do {
            config = try await loadConfiguration(identity)
        } catch {
            return failed("\(error)")
        }
        // The agent rolls every rotating file; the others follow (see RotationRelay).
        let rotation = RotationRelay()
        let logging: LogSystem
        do {
            logging = try LogSystem(config.log, coordination: rotation.coordination(for: identity.role))
        } catch {
            return failed("\(error)")
        }
        logging.bootstrap(metadataProvider: ClusterMaster.metadataProvider(for: identity))
        let runtimeLog = logging.logger(label: "octopus.\(identity.role.rawValue)")
        func failedWithLogs(_ message: String) -> Int32 {
            runtimeLog.error("\(message)")
            logging.shutdownNow()
            return failed(message)
        }
        let child = ClusterChild(launch, messenger: messenger, logging: logging, rotation: rotation, logger: runtimeLog)

        // Every process knows every task; the agent times them, workers run them.
        let tasks = schedules.all + config.schedule.tasks.map(\.scheduledTask)
        var scheduler: Scheduler?
        var ticks: TickRunner?
        switch identity.role {
        case .agent:
            let made = Mutex<Scheduler?>(nil)
            let dispatcher = child.dispatcher(for: { made.withLock { $0 } }, log: logging.logger(label: "schedule"))
            let built = Scheduler(
                environment: config.environment, log: logging.logger(label: "schedule"),
                makeLogger: { logging.logger(label: $0) }, configuration: config.value, dispatcher: dispatcher,
                shutdownTimeout: config.schedule.shutdownTimeout)
            for task in tasks {
                do { try built.register(task) } catch { return failedWithLogs("\(error)") }
            }
            made.withLock { $0 = built }
            scheduler = built
        case .worker, .master:
            // The agent writes each run's lines of the schedule log, with this worker's id and pid.
            let runner = JobRunner(
                log: logging.logger(label: "schedule"), makeLogger: { logging.logger(label: $0) },
                configuration: config.value, logsRuns: false)
            let made = TickRunner(
                runner: runner, tasks: tasks, shutdownTimeout: config.schedule.shutdownTimeout, name: identity.name)
            child.serveTicks(made)
            ticks = made
        }

        do {
            try await child.connect()
        } catch {
            return failedWithLogs("cannot bind to the master: \(error)")
        }
        let masterGone = Task {
            let reason = await child.masterGone()
            guard !Task.isCancelled else { return }
            runtimeLog.warning("the channel to the master (pid \(child.masterPID)) has closed (\(reason)); exiting now")
            ProcessGroups.killAll()
            logging.shutdownNow()
            exit(1)
        }
        defer { masterGone.cancel() }

        // Cluster clients: the agent leads (it is ready before any worker starts), the workers connect to it.
        let clients = registrations.withLock { $0.clients }
        for client in clients {
            do {
                try await client.start(
                    child.clientMode(runDirectory: config.cluster.runDirectory), config.cluster.clientInvokeTimeout,
                    config.cluster.startupTimeout)
            } catch {
                return failedWithLogs("cluster client \(client.name) did not start: \(error)")
            }
        }

        let context = ProcessContext(
            identity: identity, configuration: config, logging: logging,
            logger: logging.logger(label: identity.role == .worker ? "app" : "agent"), messenger: messenger, child: child)
        let services: [any Service]
        do {
            try await runHooks(.didLoad, context)
            try await runHooks(.willReady, context)
            let factories = registrations.withLock { identity.role == .agent ? $0.agentServices : $0.workerServices }
            var made: [any Service] = []
            for factory in factories { made += try await factory(context) }
            services = made
        } catch {
            return failedWithLogs("\(error)")
        }

        // Started in this order, stopped in the reverse: the runtime first (it tells the master), then the running
        // ticks are let finish (they may use the application's services), then the application's services, the
        // scheduler, the beforeClose hooks, the cluster clients, and logging last.
        var entries: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: logging),
            .init(service: AtStop { for client in clients { await client.close() } }),
            .init(service: AtStop { [self] in try await runHooks(.beforeClose, context) }),
        ]
        if let scheduler { entries.append(.init(service: AfterClusterReady(child: child, service: scheduler))) }
        entries += services.map { .init(service: $0) }
        if let ticks { entries.append(.init(service: ticks)) }
        entries.append(.init(service: ChildRuntime(child: child)))
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: entries, gracefulShutdownSignals: [.sigterm], logger: runtimeLog))
        let running = Task { try await group.run() }

        do {
            try await runHooks(.didReady, context)
            try await child.reportReady()
        } catch {
            runtimeLog.error("\(error)")
            await group.triggerGracefulShutdown()
            _ = await running.result
            return failed("\(error)")
        }
        let serverDidReady = Task { [self] in
            await child.clusterReady()
            guard !Task.isCancelled else { return }
            do {
                try await runHooks(.serverDidReady, context)
            } catch {
                runtimeLog.error("\(error)")
            }
        }
        defer { serverDidReady.cancel() }
        switch await running.result {
        case .success:
            return 0
        case .failure(let error):
            // logging has been shut down by the group; stderr reaches the master
            return failed("stopped on an error: \(error)")
        }
    }
}

/// Runs `body`; past `timeout` it is cancelled and the hook's failure names it and the process.
private func withDeadline<T: Sendable>(
    _ timeout: Duration, hook: String, _ index: Int, _ identity: ProcessIdentity,
    _ body: @escaping @Sendable () async throws -> T
) async throws(ClusterError) -> T {
    let name = "the \(hook) hook (#\(index + 1)) of the \(identity.name)"
    let outcome = ResumeOnce<Result<T, any Error>?>()
    let work = Task {
        do { outcome.resume(.success(try await body())) } catch { outcome.resume(.failure(error)) }
    }
    let timer = Task {
        try? await Task.sleep(for: timeout)
        outcome.resume(nil)
    }
    let result = await outcome.value
    timer.cancel()
    switch result {
    case .some(.success(let value)):
        return value
    case .some(.failure(let error)):
        throw ClusterError(.hook, "\(name) failed: \(error)")
    case .none:
        work.cancel()
        throw ClusterError(.hook, "\(name) did not finish within \(timeout) (cluster.startupTimeout)")
    }
}

/// Tells the master when the process is stopping on its own; stops first at a graceful shutdown.
private struct ChildRuntime: Service {
    let child: ClusterChild

    func run() async throws {
        try? await gracefulShutdown()
        await child.announceStopping("graceful shutdown")
    }
}

/// Runs the agent's scheduler once the whole cluster is ready; a replacement agent skips the `immediate` ticks (they
/// run once per service start).
private struct AfterClusterReady: Service {
    let child: ClusterChild
    let service: Scheduler

    func run() async throws {
        let proceed = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await child.clusterReady()
                return !Task.isCancelled
            }
            group.addTask {
                try? await gracefulShutdown()
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        guard proceed else { return }
        if child.isReplacementAgent { service.skipImmediateTicks() }
        try await service.run()
    }
}

/// Runs `work` at a graceful stop, after the services started after it have stopped (the `beforeClose` hooks; then
/// the cluster clients are closed).
private struct AtStop: Service {
    let work: @Sendable () async throws -> Void

    func run() async throws {
        try? await gracefulShutdown()
        try await work()
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
