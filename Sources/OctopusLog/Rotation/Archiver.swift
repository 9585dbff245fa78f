#if canImport(Glibc)
import Glibc
#endif
import CShims
import CZlib
import Foundation

/// Compresses rolled files to gzip, crash-safely: the archive is written to `NAME.gz.tmp-PID`, fsynced, renamed to
/// `NAME.gz` (never over an existing file), the directory fsynced, and only then is the source removed. A crash at
/// any point leaves the source, or a complete `.gz` (and at worst a stray temporary, removed on the next start).
enum Archiver {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The suffix of temporary archives; such files are never backups and are removed on start.
    static let temporaryMarker = ".gz.tmp-"

    /// A gzip file's uncompressed size modulo 2^32 (its trailer's ISIZE), without reading the rest; nil when it
    /// cannot be read.
    static func uncompressedSizeModulo(descriptor fd: Int32) -> UInt32? {
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size >= 18 else { return nil }
        var size: UInt32 = 0
        guard pread(fd, &size, 4, off_t(st.st_size - 4)) == 4 else { return nil }
        return UInt32(littleEndian: size)
    }

    /// Compresses `source` into `destination` (which must not exist) and removes `source`. Returns the bytes read.
    @discardableResult
    static func compress(_ source: String, to destination: String, level: Int32 = 6) throws(Failure) -> Int {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw Failure(description: "cannot open \(source): \(errorText())") }
        defer { close(input) }
        var st = stat()
        fstat(input, &st)
        let temporary = destination.dropLast(3) + temporaryMarker + String(getpid())
        let output = open(String(temporary), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 0o777)
        guard output >= 0 else { throw Failure(description: "cannot create \(temporary): \(errorText())") }
        var keepTemporary = false
        defer {
            close(output)
            if !keepTemporary { unlink(String(temporary)) }
        }

        var stream = z_stream()
        // windowBits 15 + 16: a gzip wrapper rather than zlib's.
        guard deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK
        else { throw Failure(description: "zlib could not start compressing \(source)") }
        defer { deflateEnd(&stream) }

        let chunk = 256 * 1024
        let inBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        let outBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer {
            inBuffer.deallocate()
            outBuffer.deallocate()
        }
        var total = 0
        var finished = false
        while !finished {
            let n = read(input, inBuffer, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "cannot read \(source): \(errorText())")
            }
            total += n
            let flush = n == 0 ? Z_FINISH : Z_NO_FLUSH
            stream.next_in = inBuffer
            stream.avail_in = UInt32(n)
            repeat {
                stream.next_out = outBuffer
                stream.avail_out = UInt32(chunk)
                let status = deflate(&stream, flush)
                guard status != Z_STREAM_ERROR else { throw Failure(description: "zlib failed on \(source)") }
                let produced = chunk - Int(stream.avail_out)
                try writeAll(output, outBuffer, produced, name: String(temporary))
                if status == Z_STREAM_END { finished = true }
            } while stream.avail_out == 0
        }
        // The archive keeps the rolled file's modification time (as gzip does), so files sort by the time they cover.
        var times = [st.st_atim, st.st_mtim]
        futimens(output, &times)
        guard fsync(output) == 0 else { throw Failure(description: "cannot fsync \(temporary): \(errorText())") }
        guard renameNoReplace(String(temporary), destination) else {
            throw Failure(description: "cannot rename \(temporary) to \(destination): \(errorText())")
        }
        keepTemporary = true  // it is the archive now
        syncDirectory(of: destination)
        unlink(source)
        return total
    }

    /// The bytes of a gzip file (several members are read one after another, as `gzip -d` does).
    static func decompress(_ path: String) throws(Failure) -> [UInt8] {
        guard let file = gzopen(path, "rb") else { throw Failure(description: "cannot open \(path): \(errorText())") }
        return try decompress(file, name: path)
    }

    /// The decompressed content of the gzip file open as `fd`, read from its start (`fd` stays open).
    static func decompress(descriptor fd: Int32) throws(Failure) -> [UInt8] {
        guard let file = gzipReader(descriptor: fd) else {
            throw Failure(description: "cannot read descriptor \(fd): \(errorText())")
        }
        return try decompress(file, name: "descriptor \(fd)")
    }

    /// A gzip reader from the start of the file open as `fd`, on a duplicate of it (`fd` stays open).
    private static func gzipReader(descriptor fd: Int32) -> gzFile? {
        lseek(fd, 0, SEEK_SET)
        let copy = dup(fd)
        guard copy >= 0, let file = gzdopen(copy, "rb") else {
            if copy >= 0 { close(copy) }
            return nil
        }
        return file
    }

    /// Up to the first `count` decompressed bytes of the gzip file open as `fd` (`fd` stays open); nil when it
    /// cannot be read.
    static func decompressPrefix(descriptor fd: Int32, count: Int) -> [UInt8]? {
        guard let file = gzipReader(descriptor: fd) else { return nil }
        defer { gzclose(file) }
        var result = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = result.withUnsafeMutableBytes { gzread(file, $0.baseAddress! + filled, UInt32(count - filled)) }
            if n < 0 { return nil }
            if n == 0 { break }
            filled += Int(n)
        }
        return Array(result.prefix(filled))
    }

    /// A file's whole content, read from its start (`fd` stays open).
    static func readAll(_ fd: Int32) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        var offset: off_t = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n <= 0 { break }
            result.append(contentsOf: buffer[0..<n])
            offset += off_t(n)
        }
        return result
    }

    private static func decompress(_ file: gzFile, name path: String) throws(Failure) -> [UInt8] {
        defer { gzclose(file) }
        var result: [UInt8] = []
        let chunk = 256 * 1024
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32(chunk)) }
            if n < 0 { throw Failure(description: "\(path) is not a complete gzip file") }
            if n == 0 { break }
            result.append(contentsOf: buffer[0..<Int(n)])
        }
        var status: Int32 = Z_OK
        _ = gzerror(file, &status)
        guard status == Z_OK || status == Z_STREAM_END else {
            throw Failure(description: "\(path) is not a complete gzip file (zlib status \(status))")
        }
        return result
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeMutablePointer<UInt8>, _ count: Int, name: String) throws(Failure) {
        var offset = 0
        while offset < count {
            let n = write(fd, bytes + offset, count - offset)
            if n > 0 {
                offset += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                throw Failure(description: "cannot write \(name): \(errorText())")
            }
        }
    }

    static func errorText() -> String {
        let code = errno
        return "\(String(cString: strerror(code))) (errno \(code))"
    }
}

/// Renames `from` to `to` only if `to` does not exist (atomically, with `renameat2(RENAME_NOREPLACE)`; where
/// the file system lacks it, with `link` + `unlink`). Returns false, with `errno` set, otherwise.
func renameNoReplace(_ from: String, _ to: String) -> Bool {
    if octopus_rename_noreplace(from, to) == 0 { return true }
    guard errno == EINVAL || errno == ENOSYS else { return false }
    guard link(from, to) == 0 else { return false }
    unlink(from)
    return true
}

/// Makes a rename in the directory of `path` durable.
func syncDirectory(of path: String) {
    let directory = (path as NSString).deletingLastPathComponent
    let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd >= 0 {
        fsync(fd)
        close(fd)
    }
}
