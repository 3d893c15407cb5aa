import LetheCore
/// Stream filtering of forgotten subjects.
public enum LetheStreamInfo { public static let name = "LetheStream" }
