public import Hummingbird
public import LetheCore
import NIOCore

/// An error of the HTTP API: a status, a stable machine-readable `code` and a one-line message
/// (never a raw subject id). Every error response has one shape: `{"error": {"code", "message"}}`.
///
/// `LetheError` codes become statuses here and nowhere else (`init(_:)`): the engine knows nothing of HTTP.
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) {
        self.status = status; self.code = code; self.message = message; self.headers = headers
    }

    /// 400: the body or a parameter is malformed or misses a field.
    public static func badRequest(_ message: String) -> APIError { APIError(.badRequest, "bad_request", message) }
    /// 401 with `WWW-Authenticate: Bearer`: no token, or a token Lethe does not know (or revoked).
    public static func unauthorized(_ message: String) -> APIError {
        var h = HTTPFields()
        h[.wwwAuthenticate] = #"Bearer realm="lethe""#
        return APIError(.unauthorized, "unauthorized", message, headers: h)
    }
    /// 403: the caller's role may not do this.
    public static func forbidden(_ message: String) -> APIError { APIError(.forbidden, "forbidden", message) }
    /// 404: no such request (or route).
    public static func notFound(_ message: String) -> APIError { APIError(.notFound, "not_found", message) }
    /// 422: the input is well formed but names what the lake does not have (a subject field).
    public static func unprocessable(_ code: String, _ message: String) -> APIError { APIError(.unprocessableContent, code, message) }

    /// The status and code of an engine error. Bad input and usage: 400; an unknown request: 404; a
    /// request in the wrong state: 409 (`conflict`); the filer approving (four eyes): 409 (`four_eyes`);
    /// data Lethe cannot handle: 422 (`unsupported`); the rest is the server's failure: 500.
    public init(_ e: LetheError) {
        let text = e.description
        switch e.code {
        case .badInput, .badUsage: self.init(.badRequest, "bad_request", text)
        case .notFound: self.init(.notFound, "not_found", text)
        case .conflict: self.init(.conflict, "conflict", text)
        case .forbidden: self.init(.conflict, "four_eyes", text)
        case .unsupported: self.init(.unprocessableContent, "unsupported", text)
        default: self.init(.internalServerError, "internal", text)
        }
    }

    /// The error as its JSON body.
    public var json: String {
        JSONValue.object(["error": .object(["code": .string(code), "message": .string(message)])]).text
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: json)))
    }
}
