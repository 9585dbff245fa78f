import Foundation
public import OctopusConfig
import OctopusSchedule

/// The `cluster:` section: how many workers, how long starting and stopping may take, how restarts back off and when
/// the master gives up, and where the run directory is.
///
/// ```yaml
/// cluster:
///   workers: 4                          # default: the number of CPUs; `start --workers N` overrides
///   startupTimeout: 30s                 # a child not ready by then is killed and counts as a failed start
///   shutdownTimeout: 15s                # at a stop, a child still running after this gets SIGKILL
///   restartBackoff: { initial: 200ms, maximum: 10s }
///   crashLoop: { exits: 5, within: 60s } # that many unexpected exits of one child within the window: stop all
///   runDirectory: run                   # 0700: the pid file and the control socket
///   messageQueue: 1000                  # messages kept per process while it is not ready
///   listen: [8080, "127.0.0.1:9090"]    # sockets the master opens and every worker accepts on
///   client: { invokeTimeout: 5s }       # cluster clients: an invoke's deadline when the call gives none
/// ```
///
/// `listen`: the master opens each listening socket once, before any worker starts, and hands it to every worker
/// (``ProcessContext``'s `listeningSocket(port:)`): workers come and go — a crash, a rolling restart — while the
/// socket stays open and connections wait in its backlog rather than being refused.
public struct ClusterConfiguration: Sendable, Hashable {
    public var workers: Int
    public var startupTimeout: Duration
    public var shutdownTimeout: Duration
    /// The first restart of a child waits `restartBackoffInitial`; each further exit within the crash-loop window
    /// doubles it, up to `restartBackoffMaximum`.
    public var restartBackoffInitial: Duration
    public var restartBackoffMaximum: Duration
    /// This many unexpected exits of one child within `crashLoopWindow` and the master stops everything.
    public var crashLoopExits: Int
    public var crashLoopWindow: Duration
    public var runDirectory: String
    /// How many messenger messages wait for one process that is not ready yet; more are dropped and counted.
    public var messageQueueLimit: Int
    /// The TCP addresses the master listens on for the workers.
    public var listen: [ListenAddress]
    /// A cluster client's invoke deadline when the call gives none (`client.invokeTimeout`).
    public var clientInvokeTimeout: Duration = .seconds(5)

    public init(
        workers: Int = ClusterConfiguration.defaultWorkers, startupTimeout: Duration = .seconds(30),
        shutdownTimeout: Duration = .seconds(15), restartBackoffInitial: Duration = .milliseconds(200),
        restartBackoffMaximum: Duration = .seconds(10), crashLoopExits: Int = 5, crashLoopWindow: Duration = .seconds(60),
        runDirectory: String = "run", messageQueueLimit: Int = 1000, listen: [ListenAddress] = []
    ) {
        self.workers = workers
        self.startupTimeout = startupTimeout
        self.shutdownTimeout = shutdownTimeout
        self.restartBackoffInitial = restartBackoffInitial
        self.restartBackoffMaximum = restartBackoffMaximum
        self.crashLoopExits = crashLoopExits
        self.crashLoopWindow = crashLoopWindow
        self.runDirectory = runDirectory
        self.messageQueueLimit = messageQueueLimit
        self.listen = listen
    }

    /// The number of CPUs this process may run on.
    public static var defaultWorkers: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    static let keys = [
        "workers", "startupTimeout", "shutdownTimeout", "restartBackoff", "crashLoop", "runDirectory", "messageQueue",
        "listen", "client",
    ]

    /// Reads the section (absent: the defaults), reporting every issue with its key path.
    public static func read(_ value: ConfigValue?, issues: ConfigIssueCollector) -> ClusterConfiguration {
        var result = ClusterConfiguration()
        guard let value else { return result }
        if case .null = value.kind { return result }
        guard let section = ConfigObjectReader(value, path: "cluster", allowedKeys: keys, issues: issues) else {
            return result
        }
        if let workers = section.int("workers") {
            if workers < 1 || workers > 1024 {
                section.report("workers", "workers must be from 1 to 1024 at \(section.path(of: "workers")), found \(workers)")
            } else {
                result.workers = workers
            }
        }
        if let timeout = section.duration("startupTimeout") { result.startupTimeout = timeout }
        if let timeout = section.duration("shutdownTimeout") { result.shutdownTimeout = timeout }
        if let backoff = section.object("restartBackoff", allowedKeys: ["initial", "maximum"]) {
            if let initial = backoff.duration("initial") { result.restartBackoffInitial = initial }
            if let maximum = backoff.duration("maximum") { result.restartBackoffMaximum = maximum }
            if result.restartBackoffMaximum < result.restartBackoffInitial {
                backoff.report("maximum", "the maximum backoff is shorter than the initial one at \(backoff.path(of: "maximum"))")
            }
        }
        if let loop = section.object("crashLoop", allowedKeys: ["exits", "within"]) {
            if let exits = loop.int("exits") {
                if exits < 1 {
                    loop.report("exits", "exits must be 1 or more at \(loop.path(of: "exits")), found \(exits)")
                } else {
                    result.crashLoopExits = exits
                }
            }
            if let window = loop.duration("within") { result.crashLoopWindow = window }
        }
        if let directory = section.string("runDirectory") {
            if directory.isEmpty {
                section.report("runDirectory", "the run directory is empty at \(section.path(of: "runDirectory"))")
            } else {
                result.runDirectory = directory
            }
        }
        if let limit = section.int("messageQueue") {
            if limit < 0 {
                section.report("messageQueue", "messageQueue cannot be negative at \(section.path(of: "messageQueue"))")
            } else {
                result.messageQueueLimit = limit
            }
        }
        if let client = section.object("client", allowedKeys: ["invokeTimeout"]),
            let timeout = client.duration("invokeTimeout")
        {
            if timeout <= .zero {
                client.report("invokeTimeout", "invokeTimeout must be more than zero at \(client.path(of: "invokeTimeout"))")
            } else {
                result.clientInvokeTimeout = timeout
            }
        }
        if let raw = section.raw("listen") {
            var items = [(raw, section.path(of: "listen"))]
            if case .array(let list) = raw.kind {
                items = list.enumerated().map { ($1, "\(section.path(of: "listen"))[\($0)]") }
            }
            for (item, path) in items {
                let text: String
                switch item.kind {
                case .int(let port): text = String(port)
                case .string(let string): text = string
                default:
                    issues.add(at: path, "expected a port or \"host:port\" at \(path), found \(item.kindName)", origin: item.origin)
                    continue
                }
                if let address = ListenAddress(text) {
                    if result.listen.contains(address) {
                        issues.add(at: path, "\(address) is listed twice at \(path)", origin: item.origin)
                    }
                    result.listen.append(address)
                } else {
                    issues.add(
                        at: path, "\"\(text)\" is not a port (0-65535; 0: any free port) or host:port at \(path)", origin: item.origin)
                }
            }
        }
        return result
    }
}

/// A TCP address to listen on: a host (default all IPv4 addresses) and a port.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String = "0.0.0.0", port: Int) {
        self.host = host
        self.port = port
    }

    /// `8080`, `127.0.0.1:8080`, `[::]:8080` (port 0: any free port, which the log says); nil when malformed.
    public init?(_ text: String) {
        var host = "0.0.0.0"
        var portText = Substring(text)
        if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            if host.isEmpty { return nil }
        }
        guard let port = Int(portText), (0...65535).contains(port) else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
