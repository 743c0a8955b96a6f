/*
 * Nexus from a frontend's side: the types come from the OpenAPI document (nexus.d.ts, made by
 * openapi-typescript from /openapi.json and never committed), the calls are plain fetch.
 *
 * Why: this file is type-checked, never run (tests/test_typescript_client.py). If `tsc --noEmit`
 * passes, the document describes the API closely enough to build a client on it:
 * - every value used below has the type a frontend needs (money and ids are strings, a booking's
 *   status is one of four words, a problem's `errors` maps a field to its messages), so no type is
 *   `unknown` or an empty object;
 * - every `@ts-expect-error` is a mistake the types must catch; were a type `any`, that line would
 *   compile and tsc would fail on the unused directive.
 * Field names are those of app.product_json and app.booking_json (sql/functions/21_products.sql,
 * 30_bookings.sql).
 */
import type { components, paths } from "./nexus";

type Schemas = components["schemas"];

/** The component names the document commits to (a missing one is an error here). */
export type Models = Pick<
  Schemas,
  | "Listing"
  | "Category"
  | "Booking"
  | "Payment"
  | "Refund"
  | "Review"
  | "Message"
  | "Conversation"
  | "Notification"
  | "User"
  | "Problem"
>;
export type Listing = Schemas["Listing"];
export type Booking = Schemas["Booking"];
export type Problem = Schemas["Problem"];

export type ListingQuery = NonNullable<paths["/api/products/"]["get"]["parameters"]["query"]>;
export type ListingPage = paths["/api/products/"]["get"]["responses"][200]["content"]["application/json"];
export type BookingRequest = paths["/api/bookings/"]["post"]["requestBody"]["content"]["application/json"];
export type BookingCreated = paths["/api/bookings/"]["post"]["responses"][201]["content"]["application/json"];

// --- a small client ----------------------------------------------------------------------

const API = "http://127.0.0.1:8000";

/** A 4xx/5xx answer: the RFC 9457 problem the API sent. */
export class ApiError extends Error {
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`);
    this.problem = problem;
  }

  /** The messages for one field of a 400, e.g. "start_date". */
  messages(field: string): string[] {
    return this.problem.errors?.[field] ?? [];
  }
}

async function send<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(API + path, init);
  const body: unknown = await response.json();
  if (!response.ok) {
    throw new ApiError(body as Problem);
  }
  return body as T;
}

export function searchListings(query: ListingQuery): Promise<ListingPage> {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) {
      params.set(name, String(value));
    }
  }
  return send<ListingPage>(`/api/products/?${params.toString()}`);
}

export function book(body: BookingRequest, access: string, idempotencyKey: string): Promise<BookingCreated> {
  return send<BookingCreated>("/api/bookings/", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Authorization: `Bearer ${access}`,
      "Idempotency-Key": idempotencyKey,
    },
    body: JSON.stringify(body),
  });
}

// --- what a page shows ---------------------------------------------------------------------

export function resultsHeading(page: ListingPage): string {
  const count: number = page.count;
  const more: string | null = page.next;
  const listings: Listing[] = page.results;
  return `${count} stays${more === null ? "" : ` (showing ${listings.length})`}`;
}

export function listingCard(listing: Listing): string {
  const id: string = listing.id;
  const price: string = listing.price_per_night; // a decimal string such as "120.00": no float rounding
  const category: string = listing.category.name;
  return `<a href="/stays/${id}">${listing.name}, ${listing.location} (${category}): ${price} ${listing.currency} a night</a>`;
}

export function statusLabel(status: Booking["status"]): string {
  // Exhaustive: a status the document adds (or a plain `string`) makes this function an error.
  switch (status) {
    case "pending":
      return "Waiting for the host";
    case "confirmed":
      return "Confirmed";
    case "canceled":
      return "Canceled";
    case "completed":
      return "Stay completed";
  }
}

export function bookingSummary(booking: Booking): string {
  const id: string = booking.id;
  const total: string = booking.total_price;
  return `#${id} ${statusLabel(booking.status)}: ${booking.start_date} to ${booking.end_date}, ${booking.guests} guests, ${total} ${booking.currency}`;
}

/** Search, book the first stay found, and say what happened. */
export async function bookFirstMatch(access: string): Promise<string> {
  const page = await searchListings({ location: "Lagos", search: "loft" });
  const listing = page.results[0];
  if (listing === undefined) {
    return resultsHeading(page);
  }
  const body: BookingRequest = {
    product_id: listing.id,
    start_date: "2027-03-01",
    end_date: "2027-03-04",
    guests: 2,
  };
  try {
    return bookingSummary(await book(body, access, crypto.randomUUID()));
  } catch (error) {
    if (!(error instanceof ApiError)) {
      throw error;
    }
    const status: number = error.problem.status;
    const dates: string | undefined = error.messages("start_date")[0];
    return status === 409 ? `Taken: ${error.problem.detail}` : (dates ?? error.problem.title);
  }
}

// --- mistakes the types must catch (each line must stay an error) --------------------------

export function mistakes(listing: Listing, booking: Booking, problem: Problem): unknown[] {
  // @ts-expect-error money is a decimal string, never a number
  const price: number = listing.price_per_night;
  // @ts-expect-error an id is a uuid string
  const id: number = listing.id;
  // @ts-expect-error a booking's total is a decimal string too
  const total: number = booking.total_price;
  // @ts-expect-error no such booking status
  const status: Booking["status"] = "bogus";
  // @ts-expect-error a problem's status is the HTTP status, a number
  const code: string = problem.status;
  // @ts-expect-error a field's errors are a list of messages, not one
  const message: string | undefined = problem.errors?.["start_date"];
  // @ts-expect-error end_date is required
  const open: BookingRequest = { product_id: listing.id, start_date: "2027-03-01", guests: 2 };
  // @ts-expect-error guests is a number
  const guests: BookingRequest = { product_id: listing.id, start_date: "2027-03-01", end_date: "2027-03-04", guests: "2" };
  // @ts-expect-error no such search parameter
  const query: ListingQuery = { colour: "red" };
  return [price, id, total, status, code, message, open, guests, query];
}

// --- each page's items are the component -----------------------------------------------------

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type PageItem<P extends keyof paths> = paths[P] extends {
  get: { responses: { 200: { content: { "application/json": { results: (infer Item)[] } } } } };
}
  ? Item
  : never;
function same<T extends true>(): T | undefined {
  return undefined;
}

export const pages = [
  same<Equal<PageItem<"/api/products/">, Schemas["Listing"]>>(),
  same<Equal<PageItem<"/api/categories/">, Schemas["Category"]>>(),
  same<Equal<PageItem<"/api/bookings/">, Schemas["Booking"]>>(),
  same<Equal<PageItem<"/api/payments/">, Schemas["Payment"]>>(),
  same<Equal<PageItem<"/api/reviews/">, Schemas["Review"]>>(),
  same<Equal<PageItem<"/api/products/{id}/reviews/">, Schemas["Review"]>>(),
  same<Equal<PageItem<"/api/conversations/">, Schemas["Conversation"]>>(),
  same<Equal<PageItem<"/api/notifications/">, Schemas["Notification"]>>(),
  same<Equal<PageItem<"/api/users/">, Schemas["User"]>>(),
];
