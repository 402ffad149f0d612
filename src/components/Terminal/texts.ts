/**
 * Every string the terminal shows, translated with Docusaurus' translate()
 * (extracted by `docusaurus write-translations`; zh-Hans in i18n/zh-Hans/code.json).
 */
import { translate } from '@docusaurus/Translate';
import type { ConnectionStatus, ConnectionTexts, StopReason } from './connection';

export function connectionTexts(): ConnectionTexts {
  return {
    takenOver: translate({
      id: 'terminal.notice.takenOver',
      message: 'This terminal was opened in another tab.',
      description: 'Printed in the terminal when a newer tab took the terminal over',
    }),
    sandboxGone: translate({
      id: 'terminal.notice.sandboxGone',
      message: 'Your sandbox is gone. Start a new sandbox to continue.',
      description: 'Printed in the terminal when the sandbox container stopped',
    }),
    shellEnded: (code) =>
      code === null
        ? translate({ id: 'terminal.notice.shellEnded', message: 'The shell ended.' })
        : translate(
            { id: 'terminal.notice.shellEndedWithCode', message: 'The shell ended (exit code {code}).' },
            { code: String(code) },
          ),
    unexpectedAnswer: (status, statusText) =>
      translate(
        {
          id: 'terminal.notice.unexpectedAnswer',
          message: 'The lab server did not answer as expected (HTTP {status}). Is it running?',
          description: 'Shown when /api answers with something that is not the lab-server (e.g. no lab-server is running)',
        },
        { status: statusText ? `${status} ${statusText}` : String(status) },
      ),
  };
}

export function loadingText(): string {
  return translate({ id: 'terminal.status.loading', message: 'Loading the terminal…' });
}

export function statusText(status: ConnectionStatus): string {
  switch (status.phase) {
    case 'session':
      return translate({ id: 'terminal.status.session', message: 'Preparing your sandbox…' });
    case 'attaching':
      return translate({ id: 'terminal.status.attaching', message: 'Connecting…' });
    case 'attached':
      return translate({ id: 'terminal.status.connected', message: 'Connected' });
    case 'waiting':
      return status.unreachable
        ? translate(
            { id: 'terminal.status.unreachable', message: 'Cannot reach the lab server. Retrying in {seconds} s…' },
            { seconds: String(status.retryInSeconds ?? 1) },
          )
        : translate(
            { id: 'terminal.status.reconnecting', message: 'Connection lost. Reconnecting in {seconds} s…' },
            { seconds: String(status.retryInSeconds ?? 1) },
          );
    case 'stopped':
      return status.stop ? stopTitle(status.stop) : translate({ id: 'terminal.status.closed', message: 'Not connected' });
  }
}

export function stopTitle(stop: StopReason): string {
  switch (stop.kind) {
    case 'taken-over':
      return translate({ id: 'terminal.stop.takenOver', message: 'Opened in another tab' });
    case 'sandbox-gone':
      return translate({ id: 'terminal.stop.sandboxGone', message: 'Sandbox gone' });
    case 'exit':
      return translate({ id: 'terminal.stop.exit', message: 'Shell ended' });
    case 'forbidden':
      return translate({ id: 'terminal.stop.forbidden', message: 'Not your sandbox' });
    case 'failed':
      return translate({ id: 'terminal.stop.failed', message: 'Not connected' });
  }
}

/** The sentence and the button offered when the connection stopped. */
export function stopAction(stop: StopReason, texts: ConnectionTexts): { message: string; button: string } {
  switch (stop.kind) {
    case 'taken-over':
      return {
        message: texts.takenOver,
        button: translate({ id: 'terminal.action.reconnectHere', message: 'Reconnect here' }),
      };
    case 'sandbox-gone':
      return {
        message: texts.sandboxGone,
        button: translate({ id: 'terminal.action.newSandbox', message: 'Start a new sandbox' }),
      };
    case 'exit':
      return {
        message: texts.shellEnded(stop.code),
        button: translate({ id: 'terminal.action.newShell', message: 'Open a new shell' }),
      };
    case 'forbidden':
      return {
        message:
          stop.message ||
          translate({ id: 'terminal.notice.forbidden', message: 'This sandbox belongs to another learner.' }),
        button: translate({ id: 'terminal.action.newSandbox', message: 'Start a new sandbox' }),
      };
    case 'failed':
      return {
        message: stop.message,
        button: translate({ id: 'terminal.action.retry', message: 'Try again' }),
      };
  }
}

export function labLabel(): string {
  return translate({ id: 'terminal.label.lab', message: 'lab', description: 'Small label before the lab id in the terminal status bar' });
}

export function terminalAriaLabel(): string {
  return translate({ id: 'terminal.label.aria', message: 'Terminal of your sandbox' });
}
