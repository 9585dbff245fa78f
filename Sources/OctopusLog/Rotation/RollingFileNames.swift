import Foundation

/// The names an appender's files take, exactly as log4js names them, and the recognition of those names (so
/// retention only ever touches this appender's own files).
///
/// - With `keepFileExt`: `[base][sep date][sep index][ext][.gz]` (`app.2024-01-01.1.log.gz`);
///   without it: `[base][ext][sep date][sep index][.gz]` (`app.log.2024-01-01.1.gz`).
/// - `.gz` only on rolled files, never on the hot file.
/// - A pattern with a leading separator keeps it, as log4js 6 does (`.yyyy-MM-dd` gives `app.log..2024-01-01`).
struct RollingFileNames: Sendable, Hashable {
    /// The directory, with no trailing slash ("." for the current one).
    let directory: String
    /// The file name without its extension when `keepFileExt`, else the whole file name.
    let stem: String
    /// The extension with its dot (`.log`), or empty.
    let ext: String
    let keepFileExt: Bool
    let separator: String
    let compress: Bool

    init(path: String, keepFileExt: Bool, separator: String, compress: Bool) {
        let directory = (path as NSString).deletingLastPathComponent
        self.directory = directory.isEmpty ? "." : directory
        let name = (path as NSString).lastPathComponent
        let ext = (name as NSString).pathExtension
        if keepFileExt, !ext.isEmpty, name.count > ext.count + 1 {
            self.stem = String(name.dropLast(ext.count + 1))
            self.ext = "." + ext
        } else {
            self.stem = name
            self.ext = ""
        }
        self.keepFileExt = keepFileExt && !self.ext.isEmpty
        self.separator = separator
        self.compress = compress
    }

    /// The hot file's name: the configured one, or, with `alwaysIncludePattern`, the current period's.
    func hotName(period: String? = nil) -> String {
        period.map { name(period: $0, index: nil, compressed: false) } ?? stem + ext
    }

    /// A file name of this appender.
    func name(period: String?, index: Int?, compressed: Bool) -> String {
        var middle = ""
        if let period { middle += separator + period }
        if let index { middle += separator + String(index) }
        let gz = compressed ? ".gz" : ""
        return keepFileExt ? stem + middle + ext + gz : stem + ext + middle + gz
    }

    func path(_ name: String) -> String { directory + "/" + name }

    /// The prefix of pending names: a rolled file waiting for the maintenance thread to name (and compress) it.
    var pendingPrefix: String { stem + ext + ".rolling-" }

    /// What a file name says, if it is one of this appender's rolled files.
    struct Rolled: Hashable, Sendable {
        var name: String
        var period: String?
        var index: Int?
        var compressed: Bool
    }

    /// Parses `fileName` as a rolled file of this appender: `period` must match `periodPattern` when dated.
    func parse(_ fileName: String, dated: Bool, periodLength: Int?) -> Rolled? {
        var rest = Substring(fileName)
        var compressed = false
        if rest.hasSuffix(".gz") {
            compressed = true
            rest = rest.dropLast(3)
        }
        // Strip the fixed parts, leaving the middle `[sep date][sep index]`.
        if keepFileExt {
            guard rest.hasPrefix(stem), rest.hasSuffix(ext), rest.count >= stem.count + ext.count else { return nil }
            rest = rest.dropFirst(stem.count).dropLast(ext.count)
        } else {
            guard rest.hasPrefix(stem + ext) else { return nil }
            rest = rest.dropFirst(stem.count + ext.count)
        }
        var period: String?
        if dated {
            guard rest.hasPrefix(separator) else { return nil }
            rest = rest.dropFirst(separator.count)
            guard let length = periodLength, rest.count >= length else { return nil }
            let candidate = rest.prefix(length)
            guard candidate.allSatisfy({ $0.isNumber || "-_.:T ".contains($0) }) else { return nil }
            period = String(candidate)
            rest = rest.dropFirst(length)
        }
        var index: Int?
        if !rest.isEmpty {
            guard rest.hasPrefix(separator), let n = Int(rest.dropFirst(separator.count)), n > 0,
                String(n) == rest.dropFirst(separator.count)
            else { return nil }
            index = n
        }
        if !dated && index == nil { return nil }  // the hot file itself
        return Rolled(name: fileName, period: period, index: index, compressed: compressed)
    }
}
