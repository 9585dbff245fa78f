// A real Octopus application for the cluster tests. What it does beyond config-declared tasks is switched by
// environment variables (the master passes its environment to every child):
//
//   FIXTURE_CRASH=agent|worker:N|worker:*   that process exits with status 3 at once (after a line on stderr)
//   FIXTURE_IGNORE_TERM=worker:N             that worker's service never finishes its graceful stop
//   FIXTURE_LOG_LINES=N                      every worker logs N lines before it reports ready
//   FIXTURE_MESSENGER=1                      the agent and the workers exchange messages (received.log)
//   FIXTURE_PING_AGENT=1                     worker 1 sends a numbered ping to the agent every 20 ms
//   FIXTURE_SLOW_REPLACEMENT_AGENT=ms        an agent started after the first one is that long in willReady
//   FIXTURE_GARBAGE=worker:N                 that worker writes garbage on its private channel once ready (the first
//                                            one only, not its replacement)
//   FIXTURE_HANG_HOOK=willReady:worker:N     that hook of that process never returns
//   FIXTURE_HOOKS=1                          every lifecycle hook appends "STAGE NAME" to hooks.log; beforeClose logs
//   FIXTURE_WORKERS_IN_CODE=N                configWillLoad sets cluster.workers to N
//   FIXTURE_SLOW_START=worker:N              that process takes 2 s in didLoad
//   FIXTURE_EXIT_SOON=worker:N               the first such process exits (status 3) 0.5 s after its didLoad
//   FIXTURE_LOG_STREAM=N                     once the cluster is ready, every worker logs N lines (category fixture,
//                                            "worker W line I" padded with FIXTURE_LOG_PAD x's), 1000 at a time with
//                                            FIXTURE_LOG_SPREAD_MS between, then appends its id to logged.txt
//   FIXTURE_TICKS=NAME:INTERVAL:TYPE:MS[:immediate][:retry][:allow],…   tasks whose runs append "NAME JOB SCHEDULED-MS
//                                            WORKER PID" to ticks.log when they start, then take MS milliseconds (-1:
//                                            until the file `release` exists); INTERVAL may be empty (immediate only);
//                                            allow: overlap allow
//   FIXTURE_SERVE=1                          every worker answers each connection on the cluster's first listening
//                                            socket with "worker N PID" and closes it
//   FIXTURE_BOARD=PATH                       a cluster client "board" whose real client is a connection to the board
//                                            server at PATH (Board.swift): every worker appends "worker N VALUE" to
//                                            news.log for each value of "news", and once ready invokes add(2, 3) and
//                                            appends "worker N invoked 5"
//
// `ClusterFixture client DIRECTORY NAME BOARD` is a free-mode cluster client instead (ClientMode.swift).
import Foundation
import Octopus

#if canImport(Glibc)
import Glibc
#endif

struct Note: Codable, Sendable {
    var text: String
}

struct WhoAreYou: RPCAction {
    typealias Input = String
    typealias Output = Int32
    static let name = "fixture.whoAreYou"
}

let environment = ProcessInfo.processInfo.environment

/// Whether a `role` or `worker:N` / `worker:*` selector names this process.
func selects(_ variable: String, _ identity: ProcessIdentity) -> Bool {
    guard let value = environment[variable] else { return false }
    let wanted = value.split(separator: ":").suffix(2).joined(separator: ":")
    switch identity.role {
    case .agent: return wanted == "agent" || value.hasSuffix(":agent")
    case .worker: return wanted == "worker:*" || wanted == "worker:\(identity.workerID ?? 0)"
    case .master: return false
    }
}

/// One line appended to `file` with a single write (O_APPEND: lines of several processes never mix).
func append(_ file: String, _ line: String) {
    let fd = open(file, O_WRONLY | O_APPEND | O_CREAT, 0o644)
    guard fd >= 0 else { return }
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

/// A worker service that never ends its graceful stop (the master must SIGKILL it at shutdownTimeout).
struct Stubborn: Service {
    func run() async throws {
        try? await gracefulShutdown()
        while true { sleep(1) }
    }
}

/// Accepts on the socket the master handed down (poll and accept on a thread of its own: another worker may take a
/// connection first) and answers who it is. At its stop it only stops accepting: the socket is every worker's.
struct WhoServer: Service {
    let fd: Int32
    let identity: ProcessIdentity

    func run() async throws {
        let fd = self.fd
        let answer = Array("worker \(identity.workerID ?? 0) \(identity.pid)\n".utf8)
        let stopping = Stopping()
        let thread = Thread {
            while !stopping.value {
                var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 100) > 0 else { continue }
                let connection = accept(fd, nil, nil)
                guard connection >= 0 else { continue }
                _ = answer.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(connection)
            }
        }
        thread.start()
        try? await gracefulShutdown()
        stopping.value = true
    }
}

final class Stopping: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool {
        get { lock.withLock { flag } }
        set { lock.withLock { flag = newValue } }
    }
}

/// Worker 1's pings to the agent, numbered, each recorded in sent.log once the master has routed it.
struct Pinger: Service {
    let messenger: Messenger

    func run() async throws {
        await cancelWhenGracefulShutdown { await ping() }
    }

    func ping() async {
        var n = 0
        while !Task.isCancelled {
            n += 1
            do {
                try messenger.sendToAgent("ping", Note(text: "\(n)"))
                append("sent.log", "ping \(n)")
            } catch {
                append("sent.log", "ping \(n) failed: \(error)")
            }
            do { try await Task.sleep(for: .milliseconds(20)) } catch { return }
        }
    }
}

if CommandLine.arguments.count == 5, CommandLine.arguments[1] == "client" {
    await runClientMode(directory: CommandLine.arguments[2], name: CommandLine.arguments[3], board: CommandLine.arguments[4])
}

let app: OctopusApplication
do {
    app = try OctopusApplication(configDirectory: "config")
} catch {
    FileHandle.standardError.write(Data("\(error)\n".utf8))
    exit(2)
}

func name(_ identity: ProcessIdentity) -> String { identity.name }

if environment["FIXTURE_HOOKS"] != nil {
    let me = ProcessInfo.processInfo.environment["OCTOPUS_ROLE"].map { role in
        role == "worker" ? "worker \(environment["OCTOPUS_WORKER_ID"] ?? "?")" : role
    } ?? "master"
    app.configWillLoad { configuration in
        append("hooks.log", "configWillLoad \(me)")
        if let workers = environment["FIXTURE_WORKERS_IN_CODE"].flatMap(Int.init) { configuration.cluster.workers = workers }
    }
    app.configDidLoad { configuration in append("hooks.log", "configDidLoad \(me) workers=\(configuration.cluster.workers)") }
    app.didLoad { context in append("hooks.log", "didLoad \(name(context.identity))") }
    app.willReady { context in append("hooks.log", "willReady \(name(context.identity))") }
    app.didReady { context in append("hooks.log", "didReady \(name(context.identity))") }
    app.serverDidReady { context in append("hooks.log", "serverDidReady \(name(context.identity))") }
    app.beforeClose { context in
        append("hooks.log", "beforeClose \(name(context.identity))")
        context.logger.info("last words of the \(name(context.identity))")
    }
}

for spec in (environment["FIXTURE_TICKS"] ?? "").split(separator: ",") {
    let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    guard parts.count >= 4, let ms = Int(parts[3]) else { continue }
    let schedule = Schedule(
        interval: parts[1].isEmpty ? nil : parts[1], type: ScheduleType(parts[2]), immediate: parts.dropFirst(4).contains("immediate"),
        overlap: parts.dropFirst(4).contains("allow") ? .allow : .skip, retry: parts.dropFirst(4).contains("retry"))
    app.schedules.register(ScheduledTask(name: parts[0], schedule: schedule) { context in
        let scheduled = Int64((context.tick.scheduledTime.timeIntervalSince1970 * 1000).rounded())
        let id = ProcessInfo.processInfo.environment["OCTOPUS_WORKER_ID"] ?? "?"
        append("ticks.log", "\(parts[0]) \(context.tick.jobID) \(scheduled) \(id) \(getpid())")
        if ms > 0 { try await Task.sleep(for: .milliseconds(ms)) }
        while ms < 0, !FileManager.default.fileExists(atPath: "release") { try await Task.sleep(for: .milliseconds(10)) }
    })
}

app.didLoad { context in
    if selects("FIXTURE_SLOW_START", context.identity) { try await Task.sleep(for: .seconds(2)) }
    if selects("FIXTURE_EXIT_SOON", context.identity), !FileManager.default.fileExists(atPath: "exited-soon") {
        append("exited-soon", "\(context.identity)")
        Task {
            try await Task.sleep(for: .milliseconds(500))
            exit(3)
        }
    }
    if selects("FIXTURE_CRASH", context.identity) {
        FileHandle.standardError.write(Data("fixture: crashing as asked (\(context.identity))\n".utf8))
        exit(3)
    }
    if context.role == .agent, let delay = environment["FIXTURE_SLOW_REPLACEMENT_AGENT"].flatMap(Int.init) {
        if FileManager.default.fileExists(atPath: "agent-started") {
            try await Task.sleep(for: .milliseconds(delay))
        }
        append("agent-started", "\(context.identity.pid)")
    }
}

for stage in ["willReady"] where environment["FIXTURE_HANG_HOOK"]?.hasPrefix(stage + ":") == true {
    app.willReady { context in
        if selects("FIXTURE_HANG_HOOK", context.identity) {
            while true { try? await Task.sleep(for: .seconds(3600)) }
        }
    }
}

app.didReady { context in
    if context.role == .worker, let count = environment["FIXTURE_LOG_LINES"].flatMap(Int.init) {
        let logger = Logger(label: "fixture")
        let id = context.workerID ?? 0
        for i in 0..<count { logger.info("worker \(id) line \(i)") }
    }
}

app.workers { context in
    var services: [any Service] = []
    if selects("FIXTURE_IGNORE_TERM", context.identity) { services.append(Stubborn()) }
    if environment["FIXTURE_PING_AGENT"] != nil, context.workerID == 1 { services.append(Pinger(messenger: context.messenger)) }
    if environment["FIXTURE_SERVE"] != nil, let address = context.listeners.first,
        let fd = context.listeningSocket(port: address.port)
    {
        services.append(WhoServer(fd: fd, identity: context.identity))
    }
    return services
}

/// Appends each value of the board's "news" to news.log until the worker stops.
struct NewsReader: Service {
    let board: ClusterClient<BoardConnection>
    let workerID: Int

    func run() async throws {
        let news = board.subscribe("news")
        await cancelWhenGracefulShutdown {
            for await event in news {
                switch event {
                case .value(let value): append("news.log", "worker \(workerID) \(value)")
                case .failed(let error): append("news.log", "worker \(workerID) failed \(error)")
                }
            }
        }
    }
}

if let path = environment["FIXTURE_BOARD"] {
    let board = app.clusterClient("board") { try BoardConnection.connect(path) }
    app.workers { context in [NewsReader(board: board, workerID: context.workerID ?? 0)] }
    app.didReady { context in
        guard context.role == .worker else { return }
        let sum = try await board.invoke(AddAction.self, .init(a: 2, b: 3))
        append("news.log", "worker \(context.workerID ?? 0) invoked \(sum)")
    }
}

app.messenger.on("note", as: Note.self) { note, sender in
    let me = app.messenger.identity.map(\.description) ?? "?"
    append("received.log", "\(me) got \"\(note.text)\" from \(sender)")
}
app.messenger.on("ping", as: Note.self) { note, _ in
    append("pings.log", "\(getpid()) \(note.text)")
}
app.messenger.handle(WhoAreYou.self) { _ in getpid() }

app.serverDidReady { context in
    if context.role == .worker, let count = environment["FIXTURE_LOG_STREAM"].flatMap(Int.init) {
        let pad = String(repeating: "x", count: environment["FIXTURE_LOG_PAD"].flatMap(Int.init) ?? 0)
        let spread = environment["FIXTURE_LOG_SPREAD_MS"].flatMap(Int.init) ?? 0
        let id = context.workerID ?? 0
        Task.detached {
            let logger = Logger(label: "fixture")
            for i in 0..<count {
                logger.info("worker \(id) line \(i) \(pad)")
                if i % 1000 == 999, spread > 0 { try? await Task.sleep(for: .milliseconds(spread)) }
            }
            context.logging.flush()
            append("logged.txt", "\(id)")
        }
    }
    if selects("FIXTURE_GARBAGE", context.identity), !FileManager.default.fileExists(atPath: "garbage-written") {
        append("garbage-written", "\(context.identity)")
        let garbage = Array("this is not a frame at all\n".utf8)
        _ = garbage.withUnsafeBytes { write(3, $0.baseAddress, $0.count) }
    }
    guard environment["FIXTURE_MESSENGER"] != nil else { return }
    let messenger = context.messenger
    switch context.role {
    case .agent:
        try messenger.broadcast("note", Note(text: "broadcast from agent"))
        try messenger.sendToApp("note", Note(text: "app from agent"))
        try messenger.sendRandom("note", Note(text: "random from agent"))
        let pid = try await messenger.call(WhoAreYou.self, "", to: .worker(1), timeout: .seconds(5))
        append("received.log", "agent learned worker 1 is pid \(pid)")
        try messenger.sendTo(pid: pid, "note", Note(text: "to worker 1 by pid"))
        do {
            try messenger.sendTo(pid: 999_999, "note", Note(text: "nobody"))
            append("received.log", "sendTo 999999 succeeded")
        } catch {
            append("received.log", "sendTo 999999 failed: \(error)")
        }
    case .worker:
        try messenger.sendToAgent("note", Note(text: "to agent from worker \(context.workerID ?? 0)"))
    case .master:
        break
    }
}

await app.run()
