import Dispatch
import Foundation
public import Logging
import NIOCore
public import OctopusLog
import OctopusRPC
import OctopusSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The master process of a cluster: takes the run directory and the pid file, starts the agent and the workers
/// (re-running this executable in each role), supervises them, serves the control socket behind `status` and
/// `stop`, and handles the signals: SIGTERM/SIGINT stop gracefully (a second one at once), SIGHUP reopens every log
/// file in every process, SIGUSR2 restarts the workers one at a time.
public enum ClusterMaster {
    /// Runs the master until the cluster has stopped; returns the exit status (0 after a requested stop).
    ///
    /// - Parameters:
    ///   - arguments: the command line the children are started with (this process's own).
    ///   - ready: called once every process is ready (a daemon's launcher is told then).
    ///   - failed: called with the reason when the start fails.
    /// - Parameters:
    ///   - rotation: the relay the master's logging system was made with (`rotation.follower`).
    public static func run(
        configuration: OctopusConfiguration, logging: LogSystem, rotation: RotationRelay = RotationRelay(),
        arguments: [String] = CommandLine.arguments,
        ready: @escaping @Sendable (Int32) -> Void = { _ in }, failed: @escaping @Sendable (String) -> Void = { _ in }
    ) async -> Int32 {
        let cluster = configuration.cluster
        let log = logging.logger(label: "octopus.master")
        func fail(_ message: String) -> Int32 {
            log.error("\(message)")
            printError("octopus: \(message)")
            failed(message)
            return 1
        }
        let runDirectory: RunDirectory
        let pidFile: PidFile
        do {
            runDirectory = try RunDirectory.prepare(cluster.runDirectory)
            pidFile = try PidFile.acquire(runDirectory.pidFile)
        } catch let error as PidFile.Failure {
            if case .held(_, let pid) = error {
                return fail("octopus is already running as pid \(pid) (the lock on \(RunDirectory(path: cluster.runDirectory).pidFile) is held); stop it first, or use another runDirectory")
            }
            return fail(error.description)
        } catch {
            return fail("\(error)")
        }
        defer { pidFile.release() }

        var secret = [UInt8](repeating: 0, count: 32)
        var random = SystemRandomNumberGenerator()
        for i in secret.indices { secret[i] = random.next() }
        var options = RPCOptions()
        options.secret = secret
        options.handshakeTimeout = cluster.startupTimeout
        // Every worker serves the same internal actions; calls always name their process.
        options.reportDuplicateActions = false
        let handlers = RPCHandlers()
        // The supervisor's own lines say when a child binds and leaves; the RPC layer speaks up only on trouble.
        var rpcLog = logging.logger(label: "octopus.rpc")
        rpcLog.logLevel = .warning
        let rpc = RPCMaster(id: "master", handlers: handlers, options: options, logger: rpcLog)
        var environment = ProcessInfo.processInfo.environment
        environment[ChildEnvironment.daemonNotify] = nil
        var listeners: [(address: ListenAddress, fd: Int32)] = []
        defer { for listener in listeners { close(listener.fd) } }
        for address in cluster.listen {
            do {
                let (fd, port) = try TCPListener.open(host: address.host, port: address.port)
                listeners.append((ListenAddress(host: address.host, port: port), fd))
                log.info("listening on \(ListenAddress(host: address.host, port: port)) for the workers")
            } catch {
                await rpc.close()
                return fail("\(error) (cluster.listen)")
            }
        }
        let supervisor = Supervisor(
            cluster: cluster, executable: "/proc/self/exe", arguments: arguments, environment: environment,
            secret: secret, rpc: rpc, logging: logging, log: log, runDirectory: runDirectory.path, listeners: listeners)
        register(handlers, supervisor)
        rotation.connectMaster { file in supervisor.forwardRollRequest(file) }

        // A command's connection is dropped when it does not bind within the startup timeout: a loaded machine can
        // hold a command's hello back for seconds.
        var controlOptions = RPCOptions()
        controlOptions.handshakeTimeout = cluster.startupTimeout
        let control = RPCMaster(id: "control", handlers: controlHandlers(supervisor), options: controlOptions, logger: rpcLog)
        do {
            try runDirectory.checkLeftover(socket: runDirectory.controlSocket)
            try await control.listen(.unix(runDirectory.controlSocket))
            chmod(runDirectory.controlSocket, 0o600)
        } catch {
            await rpc.close()
            return fail("cannot serve the control socket \(runDirectory.controlSocket): \(error)")
        }

        let signals = SignalHandlers(supervisor: supervisor, log: log)
        defer { signals.cancel() }
        log.info(
            "octopus starting: \(cluster.workers) worker(s), env \(configuration.environment), pid \(getpid()), run directory \(runDirectory.path)")
        do {
            try await supervisor.start()
            ready(getpid())
        } catch {
            if await !supervisor.stopRequested {
                await control.close()
                await rpc.close()
                return fail("\(error)")
            }
        }
        let code = await supervisor.finished.value
        await control.close()
        await rpc.close()
        log.info("master exiting with status \(code)")
        return code
    }

    /// What children ask of the master.
    private static func register(_ handlers: RPCHandlers, _ supervisor: Supervisor) {
        handlers.register(ChildReady.self) { _, context in await supervisor.ready(context.caller) }
        handlers.register(RegisterGroup.self) { pgid, context in await supervisor.registerGroup(context.caller, pgid) }
        handlers.register(ChildStopping.self) { reason, context in
            await supervisor.stopping(context.caller, reason: reason)
            return true
        }
        handlers.onMessage(ClusterMessage.groupEnded) { body, context in
            guard let pgid = Int32(String(buffer: body)) else { return }
            Task { await supervisor.groupEnded(context.sender, pgid) }
        }
        let router = supervisor.router
        handlers.onMessage(ClusterMessage.send) { body, _ in router.route(body) }
        handlers.onMessage(ClusterMessage.rollRequest) { body, _ in supervisor.forwardRollRequest(String(buffer: body)) }
        handlers.register(RollBarrier.self) { file, context in await supervisor.rollBarrier(file: file, from: context.caller) }
        handlers.register(MembersQuery.self) { _ in router.membership }
    }

    private static func controlHandlers(_ supervisor: Supervisor) -> RPCHandlers {
        let handlers = RPCHandlers()
        handlers.register(ControlStatus.self) { _ in await supervisor.status() }
        handlers.register(ControlRun.self) { name in await supervisor.runNow(name) }
        handlers.register(ControlStop.self) { _ in
            Task { await supervisor.stop() }
            return getpid()
        }
        return handlers
    }

    /// The metadata every line of a cluster process carries, so that a line says which process wrote it:
    /// `worker=N` in workers, `role=agent` or `role=master` (the pid is the layouts' `%z`).
    public static func metadataProvider(for identity: ProcessIdentity) -> Logger.MetadataProvider {
        let metadata: Logger.Metadata =
            if identity.role == .worker, let id = identity.workerID { ["worker": "\(id)"] } else { ["role": "\(identity.role.rawValue)"] }
        return Logger.MetadataProvider { metadata }
    }
}

/// The master's signal handling: SIGTERM/SIGINT (the first stops gracefully, the next at once), SIGHUP, SIGUSR2.
private final class SignalHandlers: Sendable {
    private let sources: Mutex<[any DispatchSourceSignal]>

    init(supervisor: Supervisor, log: Logger) {
        let stops = Atomic<Int>(0)
        var made: [any DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT, SIGHUP, SIGUSR2] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler {
                switch number {
                case SIGHUP:
                    Task { await supervisor.reopenFiles() }
                case SIGUSR2:
                    Task { await supervisor.startRollingRestart() }
                default:
                    if stops.wrappingAdd(1, ordering: .relaxed).oldValue == 0 {
                        log.info("\(signalName(number)): stopping gracefully (send it again to stop at once)")
                        Task { await supervisor.stop() }
                    } else {
                        log.warning("\(signalName(number)) again: stopping at once")
                        Task { await supervisor.stopNow() }
                    }
                }
            }
            source.resume()
            made.append(source)
        }
        sources = Mutex(made)
    }

    func cancel() {
        for source in sources.withLock({ $0 }) { source.cancel() }
    }
}
