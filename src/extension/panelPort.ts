/**
 * What the editor flows need from the explanation panel, and what they offer
 * it. The panel (src/extension/panel.ts) implements PanelPort; the flows
 * implement PanelHandlers. Keeping this seam small lets the two be written
 * and tested apart; the message shapes are the webview protocol's own
 * (src/protocol/webview.ts), so an implementation only forwards them.
 */
import type { PanelCase, PanelModulation, PanelSteeringBasis, PanelWords, RerankUpdate, SteeringUpdate } from '../protocol/webview';

export type { PanelCase, PanelModulation, PanelSteeringBasis, PanelWords, RerankUpdate, SteeringUpdate };

export interface PanelPort {
  /** Opens (or reveals) the panel and shows this case. */
  showCase(state: PanelCase): void;
  /** Opens (or reveals) the panel as it is: its case, or its empty state. */
  reveal(): void;
  /**
   * Steering changed from outside the panel (a command, a loaded file): the
   * sliders and the re-ranking they give, for the case on screen. Not called
   * for changes the panel asked for itself: those come back as the handler's
   * return value.
   */
  pushSteering(update: SteeringUpdate): void;
  /** The loaded file's steering basis (the panel re-ranks by itself with it), or undefined when there is none. */
  setSteeringBasis(basis: PanelSteeringBasis | undefined): void;
  /** A message for the panel's error line (the flows also show it as a notification). */
  showError?(message: string): void;
  /** Drops the case on screen (its eval file was closed or is being explained again), saying why. */
  clear(message: string): void;
  /** The shown case's modulation by an IMRNN adapter (pending, measured or failed). */
  setModulation?(m: PanelModulation): void;
}

/**
 * Answers to the panel's requests. A failure rejects with an Error whose
 * message is written for the user (the panel shows it; no notification is
 * raised for it).
 */
export interface PanelHandlers {
  /**
   * The case on screen, as it is now (sliders, candidates and metrics
   * included); undefined when none is. The handlers own it: the panel keeps no
   * copy, and shows this one after a (re)load of its webview.
   */
  currentCase(): PanelCase | undefined;
  /** A candidate of the case on screen's query was clicked. */
  onSelectCandidate(docId: string): Promise<void>;
  /**
   * A slider moved. The panel calls it for every move without waiting for the
   * one before, so α must be taken at once (before the first await). Resolves
   * to the re-ranking of the case on screen's query plus the eval file's
   * metrics, or 'superseded' when a later position of the same slider replaced
   * this request before it ran.
   */
  onSetAlpha(id: number, alpha: number): Promise<RerankUpdate | 'superseded'>;
  /** A slider for another feature (α = 1, changes nothing until moved). */
  onAddSlider(id: number): Promise<SteeringUpdate>;
  /** Every α back to 1. */
  onReset(): Promise<SteeringUpdate>;
  /** Save dialog; resolves to a message for the panel ('saved to …'), undefined when cancelled. */
  onSave(): Promise<string | undefined>;
  /** Open dialog; resolves to the loaded sliders and their re-ranking, undefined when cancelled. */
  onLoad(): Promise<SteeringUpdate | undefined>;
  /**
   * Which words of these two texts (the case on screen's query and document)
   * the score and its listed features rest on; absent where nothing can
   * measure it (the sample panel). About a second per pair.
   */
  onAttributeWords?(query: string, doc: string): Promise<PanelWords>;
}

/**
 * Stands in until a real panel is connected: remembers what it was given
 * (tests read it) and writes one line per case to the log.
 */
export class RecordingPanel implements PanelPort {
  lastCase: PanelCase | undefined;
  lastSteering: SteeringUpdate | undefined;
  lastBasis: PanelSteeringBasis | undefined;
  lastError: string | undefined;
  lastModulation: PanelModulation | undefined;
  cases = 0;

  constructor(private readonly log?: (line: string) => void) {}

  showCase(state: PanelCase): void {
    this.lastCase = state;
    this.cases++;
    const p = state.pair;
    this.log?.(`case ${p.query_id ?? '?'} / ${p.doc_id ?? '?'}: score ${p.score.toFixed(3)}, ${p.shared_features.length} shared features (no panel connected)`);
  }

  reveal(): void {
    // nothing to reveal
  }

  pushSteering(update: SteeringUpdate): void {
    this.lastSteering = update;
  }

  setSteeringBasis(basis: PanelSteeringBasis | undefined): void {
    this.lastBasis = basis;
  }

  showError(message: string): void {
    this.lastError = message;
  }

  setModulation(m: PanelModulation): void {
    this.lastModulation = m;
  }

  clear(message: string): void {
    this.lastCase = undefined;
    this.lastError = message;
  }
}
