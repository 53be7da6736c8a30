/** Sign-up and sign-in: one form, two actions (Enter signs in). */
import { useState } from "preact/hooks";
import { describeError, normalizeHandle } from "./model";
import { useModel } from "./ui";

const HANDLE = /^[a-z0-9_]{3,32}$/;

export function AuthScreen() {
  const model = useModel();
  const [handle, setHandle] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<"login" | "register" | null>(null);

  async function run(action: "login" | "register") {
    const h = normalizeHandle(handle);
    setError(null);
    if (action === "register") {
      if (!HANDLE.test(h)) return setError("A handle is 3 to 32 characters: a–z, 0–9 and _.");
      if (password.length < 8) return setError("The password needs at least 8 characters.");
    } else if (!h || !password) {
      return setError("Enter your handle and password.");
    }
    setBusy(action);
    try {
      if (action === "register") await model.register(h, password, displayName.trim() || undefined);
      else await model.login(h, password);
    } catch (err) {
      setError(describeError(err));
      setBusy(null);
    }
  }

  return (
    <main class="auth">
      <form
        class="auth-card"
        aria-labelledby="auth-title"
        onSubmit={(e) => {
          e.preventDefault();
          void run("login");
        }}
      >
        <div class="brand">
          <img src="/icon.svg" alt="" width={48} height={48} />
          <h1 id="auth-title">edge-chat</h1>
        </div>
        <p class="muted">Sign in, or create an account with a new handle.</p>
        <label for="auth-handle">Handle</label>
        <input
          id="auth-handle"
          data-testid="auth-handle"
          name="username"
          autocomplete="username"
          autocapitalize="none"
          spellcheck={false}
          required
          maxLength={32}
          value={handle}
          onInput={(e) => setHandle(e.currentTarget.value)}
          aria-describedby="auth-handle-hint"
        />
        <small id="auth-handle-hint" class="hint">3–32 characters: a–z, 0–9, _</small>
        <label for="auth-password">Password</label>
        <input
          id="auth-password"
          data-testid="auth-password"
          type="password"
          name="password"
          autocomplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        <label for="auth-display-name">
          Display name <span class="muted">(optional, for a new account)</span>
        </label>
        <input id="auth-display-name" data-testid="auth-display-name" autocomplete="name" maxLength={64} value={displayName} onInput={(e) => setDisplayName(e.currentTarget.value)} />
        {error && (
          <p class="form-error" role="alert" data-testid="auth-error">
            {error}
          </p>
        )}
        <div class="auth-actions">
          <button type="submit" class="primary" data-testid="auth-login" disabled={busy !== null}>
            {busy === "login" ? "Signing in…" : "Sign in"}
          </button>
          <button type="button" class="secondary" data-testid="auth-register" disabled={busy !== null} onClick={() => void run("register")}>
            {busy === "register" ? "Creating…" : "Create account"}
          </button>
        </div>
      </form>
    </main>
  );
}
