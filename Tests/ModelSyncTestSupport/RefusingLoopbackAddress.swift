import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A loopback address that refuses every connection for as long as this object lives: a TCP socket
/// bound to a port of `127.0.0.1` without `listen()`, so a connection attempt is answered with a
/// reset (`ECONNREFUSED`) and no other process can take the port meanwhile (unlike the port of a
/// stopped server).
///
/// ```swift
/// let offline = try RefusingLoopbackAddress()
/// defer { offline.close() }
/// let remote = RESTRemote(configuration: .init(baseURL: offline.baseURL), models: models)
/// ```
public final class RefusingLoopbackAddress: Sendable {
    /// `http://127.0.0.1:<port>`: every request to it fails with "connection refused".
    public let baseURL: URL
    /// The port held.
    public let port: Int
    private let descriptor = Mutex<Int32?>(nil)

    /// Binds a free loopback port and keeps it until ``close()``.
    public init() throws {
        #if os(Linux)
            let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let socketFD = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard socketFD >= 0 else { throw RefusingAddressError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, length) }
        }
        guard bound == 0 else {
            closeDescriptor(socketFD)
            throw RefusingAddressError("could not bind a loopback port: errno \(errno)")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        baseURL = URL(string: "http://127.0.0.1:\(port)")!
        descriptor.withLock { $0 = socketFD }
    }

    /// Frees the port (another process may take it from then on).
    public func close() {
        let socketFD = descriptor.withLock { value -> Int32? in
            defer { value = nil }
            return value
        }
        if let socketFD { closeDescriptor(socketFD) }
    }

    deinit { close() }
}

private func closeDescriptor(_ socketFD: Int32) {
    #if canImport(Glibc)
        Glibc.close(socketFD)
    #elseif canImport(Musl)
        Musl.close(socketFD)
    #elseif canImport(Darwin)
        Darwin.close(socketFD)
    #endif
}

/// The refusing address could not be set up.
public struct RefusingAddressError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
