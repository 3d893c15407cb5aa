extension S3ObjectStore {
    /// The lake key of an event's object: nil when the event is of another bucket or of a key
    /// outside the lake's prefix (a notification configured on the whole bucket).
    public func lakeKey(of event: S3ObjectEvent) -> String? {
        guard event.bucket == client.endpoint.bucket, !event.key.hasSuffix("/") else { return nil }
        guard let k = lakeKey(event.key), !k.isEmpty else { return nil }
        return k
    }
}
