using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http;

/// <summary>
/// The generated validators join member names with '.', as C# does. Messages name configuration keys, which join with
/// ':': that is what an operator writes (with '__' in an environment variable), and a host name has dots of its own,
/// so <c>Hosts:api.example.com.BreakDuration</c> would not say where the host name ends.
/// </summary>
internal static class ConfigurationKeyPath
{
    /// <summary><paramref name="result"/>, with the member names after <paramref name="path"/> joined by ':'.</summary>
    public static ValidateOptionsResult Of(ValidateOptionsResult result, string path)
    {
        if (!result.Failed || result.Failures is null)
        {
            return result;
        }

        var members = new Regex(Regex.Escape(path) + @"((?:\.[A-Z][A-Za-z0-9]*)+)", RegexOptions.CultureInvariant);
        return ValidateOptionsResult.Fail(result.Failures.Select(f => members.Replace(f, m => path + m.Groups[1].Value.Replace('.', ':'))));
    }
}
