public import Logging
public import ServiceLifecycle
import Dispatch
import Foundation
import OctopusConfig
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The running logging system: the appenders a ``LogConfiguration`` describes, with their files open, and the
/// swift-log handler factory that routes each `Logger` to its category.
///
/// ```swift
/// let logging = try LogSystem(LogConfiguration.load(directory: "config"))
/// logging.bootstrap()
/// let logger = Logger(label: "db.pool")
/// logger.info("connected", metadata: ["host": "10.0.0.5"])
/// try await logging.shutdown()   // every line logged before is on disk when it returns
/// ```
///
/// It is a swift-service-lifecycle `Service`: in a `ServiceGroup` (put it first, so it is shut down last) `run()`
/// waits for graceful shutdown, then drains and closes every appender.
public final class LogSystem: Service, Sendable {
    public let configuration: LogConfiguration
    public let levels: LogLevelTable
    let clock: LogClock
    let tree: CategoryTree
    private let appendersByName: [String: any LogAppender]
    /// The appenders that hold something to drain and close (not the filters, which only pass records on).
    private let ownedAppenders: [any LogAppender]
    /// Finishes rolls (naming, compressing, retention) off the writers' threads.
    private let maintenance: MaintenanceQueue

    private struct State {
        var nodes: [String: CategoryNode] = [:]
        var overrides: [String: LogLevel] = [:]
        var defaultMetadataProvider: Logger.MetadataProvider?
        var isShutDown = false
        /// swift-log's factory holds this system (and so its nodes) for the rest of the process.
        var isBootstrapped = false
    }
    private let state = Mutex(State())

    /// Builds every appender and opens every file. Throws, having opened nothing that stays open, when the
    /// configuration is not valid or a file cannot be opened.
    ///
    /// - Parameters:
    ///   - clock: where event times come from (tests pass a fixed clock).
    ///   - environment: the pid and host name layouts print.
    ///   - coordination: who rolls rotating files when several processes write them (see ``RotationCoordination``).
    public init(
        _ configuration: LogConfiguration,
        clock: LogClock = .system,
        environment: LayoutEnvironment = .current,
        coordination: RotationCoordination = .alone
    ) throws(LogSystemError) {
        let issues = configuration.validate()
        if !issues.isEmpty {
            throw LogSystemError(.invalidConfiguration, ConfigurationError(issues).description)
        }
        self.configuration = configuration
        self.clock = clock
        self.levels = LogLevelTable(custom: configuration.levels)

        var writers: [WriterTarget: LogWriter] = [:]
        var built: [String: any LogAppender] = [:]
        var owned: [any LogAppender] = []
        let maintenance = MaintenanceQueue()
        let context = BuildContext(
            environment: environment, clock: clock, maintenance: maintenance, coordination: coordination)
        do throws(LogSystemError) {
            // Appenders that hold something first, then each filter once its target exists (validation has
            // ruled out missing targets and cycles, so every round builds at least one).
            var pending = configuration.appenders.keys.sorted()
            while !pending.isEmpty {
                var next: [String] = []
                for name in pending {
                    guard let appender = configuration.appenders[name] else { continue }
                    if let target = appender.filterTarget, built[target] == nil {
                        next.append(name)
                        continue
                    }
                    let made = try Self.make(appender, named: name, context: context, writers: &writers, built: built)
                    built[name] = made
                    if appender.filterTarget == nil { owned.append(made) }
                }
                if next.count == pending.count {
                    throw LogSystemError(.invalidConfiguration, "appenders \(next.joined(separator: ", ")) pass events to each other in a cycle")
                }
                pending = next
            }
        } catch {
            for writer in writers.values { writer.shutdown() }
            maintenance.shutdown()
            throw error
        }
        self.maintenance = maintenance
        self.appendersByName = built
        self.ownedAppenders = owned
        self.tree = CategoryTree(configured: configuration.categories, appenders: built)
    }

    /// What building an appender needs besides its configuration.
    private struct BuildContext: Sendable {
        var environment: LayoutEnvironment
        var clock: LogClock
        var maintenance: MaintenanceQueue
        var coordination: RotationCoordination
    }

    private static func make(
        _ appender: AppenderConfiguration,
        named name: String,
        context: BuildContext,
        writers: inout [WriterTarget: LogWriter],
        built: [String: any LogAppender]
    ) throws(LogSystemError) -> any LogAppender {
        let layout: any LogLayout
        do {
            layout = try appender.layout.make(environment: context.environment)
        } catch {
            throw LogSystemError(.invalidConfiguration, "invalid pattern at log.appenders.\(name).layout.pattern: \(error)")
        }
        func writer(_ target: WriterTarget, rotation: RotationOptions? = nil) throws(LogSystemError) -> LogWriter {
            if let existing = writers[target] {
                guard existing.options == appender.writer, existing.rotator?.options == rotation else {
                    throw LogSystemError(.invalidConfiguration, "appender \"\(name)\" writes \(target.name) with other writer options than another appender writing it, at log.appenders.\(name)")
                }
                return existing
            }
            let made = try makeWriter(target, options: appender.writer, rotation: rotation, layout: layout, context: context)
            writers[target] = made
            return made
        }
        func target(_ targetName: String) throws(LogSystemError) -> any LogAppender {
            guard let made = built[targetName] else {
                throw LogSystemError(.invalidConfiguration, "appender \"\(name)\" passes events to \"\(targetName)\", which could not be built")
            }
            return made
        }
        switch appender.kind {
        case .stdout, .console:
            return WriterAppender(layout: layout, writer: try writer(.descriptor(1, name: "stdout")), syncLevel: appender.syncLevel)
        case .stderr:
            return WriterAppender(layout: layout, writer: try writer(.descriptor(2, name: "stderr")), syncLevel: appender.syncLevel)
        case .file(let options):
            let file = try writer(.file(options.filename), rotation: options.rotation)
            return WriterAppender(layout: layout, writer: file, syncLevel: appender.syncLevel)
        case .dateFile(let options):
            let period = options.alwaysIncludePattern ? options.pattern : nil
            let file = try writer(.file(options.filename, period: period), rotation: options.rotation)
            return WriterAppender(layout: layout, writer: file, syncLevel: appender.syncLevel)
        case .multiFile(let options):
            let period = options.rotation.flatMap { $0.alwaysIncludePattern ? $0.pattern : nil }
            let writerOptions = appender.writer
            return MultiFileAppender(options: options, layout: layout, syncLevel: appender.syncLevel, pid: context.environment.pid) {
                path, firstOpen throws(LogSystemError) in
                var opening = writerOptions
                opening.truncate = opening.truncate && firstOpen
                return try makeWriter(.file(path, period: period), options: opening, rotation: options.rotation, layout: layout, context: context)
            }
        case .recording(let limit):
            return RecordingAppender(layout: layout, limit: limit)
        case .logLevelFilter(let targetName, let level, let maxLevel):
            return LogLevelFilterAppender(target: try target(targetName), level: level, maxLevel: maxLevel)
        case .categoryFilter(let targetName, let exclude):
            return CategoryFilterAppender(target: try target(targetName), exclude: exclude)
        case .noLogFilter(let targetName, let exclude):
            let next = try target(targetName)
            do {
                return try NoLogFilterAppender(target: next, exclude: exclude)
            } catch {
                throw LogSystemError(.invalidConfiguration, "invalid regular expression at log.appenders.\(name).exclude: \(error)")
            }
        }
    }

    /// A writer for `target`, its drops reported in `layout`.
    private static func makeWriter(
        _ target: WriterTarget,
        options: WriterOptions,
        rotation: RotationOptions?,
        layout: any LogLayout,
        context: BuildContext
    ) throws(LogSystemError) -> LogWriter {
        let rotator = rotation.map {
            Rotator(
                path: target.name, options: $0, maintenance: context.maintenance, clock: context.clock,
                announce: context.coordination.announce)
        }
        return try LogWriter(
            target: target, options: options, rotator: rotator, coordination: context.coordination, clock: context.clock
        ) { count in
            let record = LogRecord(
                level: .warn,
                category: "octopus",
                message: "dropped \(count) log line(s): the buffer of \(target.name) was full",
                timestamp: LogTimestamp.now()
            )
            var line = LogBuffer()
            layout.render(record, into: &line)
            line.append(UInt8(ascii: "\n"))
            return Array(line.bytes())
        }
    }

    // MARK: - Loggers

    /// Makes every `Logger(label:)` of the process use this system. Call once per process (swift-log's rule).
    /// `metadataProvider` also becomes the ``defaultMetadataProvider`` of the loggers this system makes.
    public func bootstrap(metadataProvider: Logger.MetadataProvider? = nil) {
        state.withLock { state in
            if let metadataProvider { state.defaultMetadataProvider = metadataProvider }
            state.isBootstrapped = true
        }
        LoggingSystem.bootstrap({ [self] label, provider in self.handler(for: label, metadataProvider: provider) }, metadataProvider: metadataProvider)
    }

    /// The metadata provider of handlers and loggers made without one (a process model sets the process's
    /// identity here, so that every line says which process wrote it).
    public var defaultMetadataProvider: Logger.MetadataProvider? {
        get { state.withLock { $0.defaultMetadataProvider } }
        set { state.withLock { $0.defaultMetadataProvider = newValue } }
    }

    /// The handler for a label, for `Logger(label:factory:)` without bootstrapping (tests, libraries).
    public func handler(for label: String, metadataProvider: Logger.MetadataProvider? = nil) -> OctopusLogHandler {
        let node = node(for: label)
        let (isBootstrapped, defaultProvider) = state.withLock { ($0.isBootstrapped, $0.defaultMetadataProvider) }
        return OctopusLogHandler(
            node: node, retainingNode: !isBootstrapped, metadataProvider: metadataProvider ?? defaultProvider)
    }

    /// A logger of this system for `label`, without bootstrapping swift-log.
    public func logger(label: String, metadataProvider: Logger.MetadataProvider? = nil) -> Logger {
        Logger(label: label) { label in self.handler(for: label, metadataProvider: metadataProvider) }
    }

    func node(for label: String) -> CategoryNode {
        state.withLock { state in
            if let node = state.nodes[label] { return node }
            let node = CategoryNode(
                name: label,
                appenders: tree.appenders(for: label),
                level: tree.level(for: label, overrides: state.overrides),
                table: levels,
                clock: clock
            )
            state.nodes[label] = node
            return node
        }
    }

    /// Logs one event at any level, including those swift-log cannot name (MARK, custom levels), through the
    /// appenders of `category`, if the category's level lets it through.
    public func log(
        _ level: LogLevel,
        _ message: String,
        category: String = "default",
        metadata: Logger.Metadata = [:],
        file: String = #fileID,
        function: String = #function,
        line: UInt = #line
    ) {
        let node = node(for: category)
        guard level.value >= node.threshold.load(ordering: .relaxed) else { return }
        let record = LogRecord(
            level: level, category: category, message: message, metadata: metadata, timestamp: clock.now(),
            file: file, function: function, line: line
        )
        for appender in node.appenders { appender.append(record) }
    }

    // MARK: - Levels at run time

    /// Sets the level of `category` (configured or not) at run time; `nil` returns it to the configured one.
    /// Every logger of the category follows at once, and so do loggers of its children that have no level of
    /// their own.
    public func setLevel(_ level: LogLevel?, for category: String) {
        state.withLock { state in
            state.overrides[category] = level
            for (label, node) in state.nodes {
                node.setLevel(tree.level(for: label, overrides: state.overrides))
            }
        }
    }

    /// The level in force for `category` now.
    public func level(for category: String) -> LogLevel {
        state.withLock { tree.level(for: category, overrides: $0.overrides) }
    }

    // MARK: - Appenders

    /// The appender configured under `name`.
    public func appender(named name: String) -> (any LogAppender)? { appendersByName[name] }

    /// The counters of the appender configured under `name`.
    public func counters(for name: String) -> AppenderCounters? { appendersByName[name]?.counters }

    /// Returns once everything logged before the call is written by every appender.
    public func flush() {
        for appender in ownedAppenders { appender.flush() }
    }

    /// The writers open now, each once (appenders writing one target share its writer).
    private var openWriters: [LogWriter] {
        var seen: Set<ObjectIdentifier> = []
        var result: [LogWriter] = []
        for case let appender as any WritingAppender in ownedAppenders {
            for writer in appender.openWriters where seen.insert(ObjectIdentifier(writer)).inserted { result.append(writer) }
        }
        return result
    }

    /// Closes and reopens every file appender's file (after an external tool moved the files away).
    public func reopenFiles() {
        for writer in openWriters { writer.reopen() }
    }

    /// Empties the files of appenders with `flags: w`, as a process writing alone does when it opens them: what the
    /// first process of a cluster calls before any process opens them, so that a restarted process never empties
    /// what the others wrote.
    public static func truncateFilesAtStart(_ configuration: LogConfiguration, now: LogTimestamp = .now()) {
        for appender in configuration.appenders.values where appender.writer.truncate {
            if case .multiFile(let options) = appender.kind {
                // Its files are named by the values logged: every one there is, is emptied.
                for name in (try? FileManager.default.contentsOfDirectory(atPath: options.directory)) ?? []
                where options.value(forPath: options.directory + name) != nil {
                    truncate(LogFileSet.hotPath(of: options.directory + name, rotation: options.rotation, now: now), 0)
                }
            }
            guard let (key, rotation) = appender.fileWriter else { continue }
            truncate(LogFileSet.hotPath(of: key.path, rotation: rotation, now: now), 0)
        }
    }

    /// Reopens the file appenders writing `file` (a configured file name): the owner of a rolled file asks this of
    /// every other process before archiving it. Returns once they write to the path anew.
    public func reopen(file: String) {
        for writer in openWriters where writer.target.name == file { writer.reopen() }
    }

    /// Rolls `file` now if it has grown past its `maxLogSize`, whoever wrote it (a follower's request to the owner).
    public func rollIfOversized(file: String) {
        // A multiFile appender opens a file it writes but has closed (or never had open: only other processes wrote
        // it), since only this process may roll it.
        var seen: Set<ObjectIdentifier> = []
        for case let appender as any WritingAppender in ownedAppenders {
            guard let writer = appender.writer(forFile: file), seen.insert(ObjectIdentifier(writer)).inserted else { continue }
            writer.rollIfOversized()
        }
    }

    /// The configured names of the files this system rolls (appenders with rotation).
    public var rotatingFiles: [String] {
        openWriters.filter { $0.rotator != nil }.map(\.target.name)
    }

    /// Rolls every file appender whose period has ended by the system's clock, now. (Writers do this themselves at
    /// each boundary; with an injected clock, tests call this after moving time.) Returns once the rolls are done;
    /// naming and compressing go on in the background (see ``waitForArchiving()``).
    public func checkRotation() {
        for writer in openWriters { writer.checkRotation() }
    }

    /// Rolls every rotating file appender now, whatever its size or period.
    public func rollFiles() {
        for writer in openWriters where writer.rotator != nil { writer.roll() }
    }

    /// Returns once every roll so far is named, compressed and retention applied.
    public func waitForArchiving() {
        maintenance.waitUntilIdle()
    }

    /// Writes everything logged before the call, then closes every appender. Events logged later are counted as
    /// drops, never written half-way.
    public func shutdown() async throws {
        shutdownNow()
    }

    /// The synchronous form of ``shutdown()``, for `defer` blocks and command-line tools.
    public func shutdownNow() {
        let first = state.withLock { state in
            defer { state.isShutDown = true }
            return !state.isShutDown
        }
        guard first else { return }
        for appender in ownedAppenders { appender.shutdown() }
        maintenance.shutdown()
    }

    /// Runs until graceful shutdown of the service group, then drains and closes every appender. While it runs,
    /// SIGHUP reopens every file (for an external logrotate that moved them).
    public func run() async throws {
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP)
        hangup.setEventHandler { [self] in self.reopenFiles() }
        hangup.resume()
        defer { hangup.cancel() }
        try? await gracefulShutdown()
        shutdownNow()
    }
}

