import Logging
import Synchronization

/// What a logger of one label needs on every call, resolved once when the first logger of that label is made:
/// its appenders and its level threshold. The threshold is atomic so a level change at run time reaches every
/// logger of the category (and of its children that take their level from it) without locking the hot path.
/// `@unchecked`: everything is a constant or atomic; the event writers' memory is written once, in `init`.
final class CategoryNode: @unchecked Sendable {
    let name: String
    let appenders: [any LogAppender]
    /// `appenders` as every line calls them (see ``UnretainedAppender``); the array above keeps them alive.
    let unretainedAppenders: [UnretainedAppender]
    /// Set when every appender is a writer whose layout renders from the event's parts: the handler builds no
    /// record (no copies of the event's strings into one).
    let eventWriters: UnsafeBufferPointer<EventWriter>?
    /// Whether one of them prints the event's metadata (`basic`, `coloured`, a pattern with `%X`): only then does the
    /// handler merge the metadata.
    let eventWritersPrintMetadata: Bool
    /// The value of the level each swift-log level maps to, by swift-log level order (trace … critical).
    let levelValues: UnsafeBufferPointer<Int>
    /// Holds the memory of `eventWriters` and `levelValues`.
    private let arena: RawArena
    let table: LogLevelTable
    let clock: LogClock
    /// ``OctopusLogHandler/messageIsOneString``.
    let messageInPlace = OctopusLogHandler.messageIsOneString
    /// The threshold's level value.
    let threshold: Atomic<Int>
    /// The lowest swift-log level (as its ordinal) that can pass, so swift-log's own check filters cheaply; 7 when
    /// none can (OFF, or MARK and above).
    let swiftLogOrdinal: Atomic<Int>

    init(name: String, appenders: [any LogAppender], level: LogLevel, table: LogLevelTable, clock: LogClock) {
        self.name = name
        self.appenders = appenders
        self.unretainedAppenders = appenders.map(UnretainedAppender.init)
        var arena = RawArena()
        let writers = appenders.compactMap { appender -> EventWriter? in
            guard let writer = appender as? WriterAppender, let layout = writer.partsLayout else { return nil }
            let programs = Logger.Level.allCases.map { level in
                let program = layout.program(category: name, level: table.level(for: level))
                return RawProgram(
                    pieces: arena.copy(program.pieces), literals: arena.copy(program.literals),
                    format: writer.writer.registerFormat(layout: layout, program: program))
            }
            return EventWriter(appender: .passUnretained(writer), programs: arena.copy(programs))
        }
        self.eventWriters = writers.count == appenders.count ? arena.copy(writers) : nil
        self.eventWritersPrintMetadata = appenders.contains { ($0 as? WriterAppender)?.needsEventSuffix == true }
        self.levelValues = arena.copy(Logger.Level.allCases.map { table.level(for: $0).value })
        self.arena = arena
        self.table = table
        self.clock = clock
        self.threshold = Atomic(level.value)
        self.swiftLogOrdinal = Atomic(table.swiftLogThreshold(for: level.value)?.ordinal ?? 7)
    }

    func setLevel(_ level: LogLevel) {
        threshold.store(level.value, ordering: .relaxed)
        swiftLogOrdinal.store(table.swiftLogThreshold(for: level.value)?.ordinal ?? 7, ordering: .relaxed)
    }
}

/// A writer appender whose layout renders from the event's parts, with the layout's program for this category
/// and each swift-log level (see ``PatternLayout/Program``), in memory its ``CategoryNode`` owns. Plain pointers, so
/// a line reads them with no reference counting; the appender is called without retaining it, as
/// ``UnretainedAppender`` is.
struct EventWriter {
    let appender: Unmanaged<WriterAppender>
    /// Indexed by swift-log level order (trace … critical).
    let programs: UnsafeBufferPointer<RawProgram>

    @inline(__always)
    func append(_ parts: borrowing EventParts, level: Logger.Level, suffix: EventSuffix?) {
        appender._withUnsafeGuaranteedRef { $0.append(parts, program: programs[level.ordinal], suffix: suffix) }
    }
}

/// A ``PatternLayout/Program`` copied into memory its owner keeps (a ``CategoryNode``, or a ``LogWriter`` for the
/// formats it renders).
struct RawProgram {
    let pieces: UnsafeBufferPointer<PatternLayout.Piece>
    let literals: UnsafeBufferPointer<UInt8>
    /// The program's number in its appender's writer, which renders lines with it from their timestamp and message
    /// (``LogWriter/submitDeferred(format:timestamp:message:durable:)``); 0 for a program that reads more.
    var format: UInt32 = 0
}

/// Memory that lives as long as its owner: copies of arrays of plain values (no references), freed together.
struct RawArena: ~Copyable {
    private var allocations: [UnsafeMutableRawPointer] = []

    mutating func copy<Element: BitwiseCopyable>(_ values: [Element]) -> UnsafeBufferPointer<Element> {
        let memory = UnsafeMutableBufferPointer<Element>.allocate(capacity: Swift.max(1, values.count))
        _ = memory.initialize(from: values)
        allocations.append(UnsafeMutableRawPointer(memory.baseAddress!))
        return UnsafeBufferPointer(rebasing: memory[..<values.count])
    }

    deinit { for allocation in allocations { allocation.deallocate() } }
}

/// An appender as a node calls it on every line. A writer appender (files, the console) is called without
/// retaining it (its node holds it strongly): every thread calls it on every line, and retaining one shared object
/// from several cores makes them wait for each other.
enum UnretainedAppender: @unchecked Sendable {
    case writer(Unmanaged<WriterAppender>)
    case other(any LogAppender)

    init(_ appender: any LogAppender) {
        if let writer = appender as? WriterAppender {
            self = .writer(.passUnretained(writer))
        } else {
            self = .other(appender)
        }
    }

    @inline(__always)
    func append(_ record: borrowing LogRecord) {
        switch self {
        case .writer(let writer): writer._withUnsafeGuaranteedRef { $0.append(record) }
        case .other(let appender): appender.append(record)
        }
    }
}

/// The categories of a configuration with their appenders built: resolves a logger label to its node.
///
/// A label uses the nearest configured category among itself and its dotted ancestors (`db.pool.conn` → `db.pool`
/// → `db` → `default`). A category without a level takes its parent's; a category's appenders are its own plus,
/// unless `inherit: false`, its parent's (each appender once).
struct CategoryTree: Sendable {
    let configured: [String: CategoryConfiguration]
    let appendersByCategory: [String: [any LogAppender]]

    init(configured: [String: CategoryConfiguration], appenders: [String: any LogAppender]) {
        self.configured = configured
        var resolved: [String: [any LogAppender]] = [:]
        func resolve(_ name: String) -> [any LogAppender] {
            if let done = resolved[name] { return done }
            let category = configured[name] ?? CategoryConfiguration()
            var list = (category.appenders ?? []).compactMap { appenders[$0] }
            if name != "default", category.inherit, let parent = Self.parent(of: name, in: configured) {
                for appender in resolve(parent) where !list.contains(where: { $0 === appender }) {
                    list.append(appender)
                }
            }
            resolved[name] = list
            return list
        }
        for name in configured.keys { _ = resolve(name) }
        self.appendersByCategory = resolved
    }

    /// `name` and its ancestors, nearest first, ending with `default`.
    static func chain(of name: String) -> [String] {
        var chain: [String] = []
        var current = Substring(name)
        while !current.isEmpty {
            chain.append(String(current))
            guard let dot = current.lastIndex(of: ".") else { break }
            current = current[..<dot]
        }
        if chain.last != "default" { chain.append("default") }
        return chain
    }

    /// The nearest configured strict ancestor of `name`.
    static func parent(of name: String, in configured: [String: CategoryConfiguration]) -> String? {
        chain(of: name).dropFirst().first { configured[$0] != nil }
    }

    func appenders(for label: String) -> [any LogAppender] {
        for name in Self.chain(of: label) {
            if let list = appendersByCategory[name] { return list }
        }
        return []
    }

    /// The level in force for `label`: the first of its chain with a run-time override or a configured level.
    func level(for label: String, overrides: [String: LogLevel]) -> LogLevel {
        for name in Self.chain(of: label) {
            if let level = overrides[name] ?? configured[name]?.level { return level }
        }
        return .off
    }
}
