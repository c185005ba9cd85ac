namespace CircuitBreaker.Http;

/// <summary>
/// Identifies one circuit: a named <see cref="HttpClient"/> and the downstream authority it calls.
/// </summary>
/// <param name="ClientName">The name of the client in <c>IHttpClientFactory</c>; empty for the default client.</param>
/// <param name="Authority">The downstream authority in the form <c>scheme://host:port</c>, for example <c>https://users.internal:443</c>.</param>
public readonly record struct CircuitKey(string ClientName, string Authority)
{
    /// <inheritdoc />
    public override string ToString() =>
        string.IsNullOrEmpty(ClientName) ? Authority ?? string.Empty : $"{Authority} (client '{ClientName}')"; // default(CircuitKey) holds nulls
}
