namespace CircuitBreaker.Http;

/// <summary>
/// The lookup key of a circuit within one client, made of the parts <see cref="Uri"/> already holds so that
/// finding the circuit of a request builds no string. Compared ordinally: <see cref="Uri"/> has already
/// lower-cased the scheme and host (and turned Unicode hosts into punycode), and an ordinal hash and comparison
/// cost about a third of case-insensitive ones on every request.
/// </summary>
internal readonly struct HostKey : IEquatable<HostKey>
{
    public HostKey(Uri uri)
        : this(uri, uri.Scheme)
    {
    }

    public HostKey(Uri uri, string scheme)
    {
        Scheme = scheme;
        Host = uri.IdnHost;
        Port = uri.Port;
    }

    public string Scheme { get; }

    public string Host { get; }

    public int Port { get; }

    public string Authority => $"{Scheme}://{(Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]" : Host)}:{Port}";

    // == and the parameterless GetHashCode are ordinal too, without the dispatch on a StringComparison.
    public bool Equals(HostKey other) =>
        Port == other.Port
        && Host == other.Host
        && Scheme == other.Scheme;

    public override bool Equals(object? obj) => obj is HostKey other && Equals(other);

    public override int GetHashCode() => Host.GetHashCode() ^ Port;
}
